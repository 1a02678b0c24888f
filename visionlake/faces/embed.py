"""dlib's ResNet face embedder (128-d), fed with dlib-aligned 150x150 chips.

Chips are cut with ``dlib.get_face_chips`` (5-point similarity alignment, padding 0.25: what the model
was trained on) and embedded as one batch. ``flip=True`` also embeds the mirrored chip and averages
the two descriptors (test-time augmentation); vectors are L2-normalised so that cosine similarity
and Euclidean distance rank identically.

``jitters=N`` adds N slightly moved, scaled, rotated and mirrored copies of each chip, dlib's
``num_jitters`` recipe (the one behind dlib's published 99.38% LFW figure, at 100 jitters). Unlike
``dlib.jitter_image``, whose random stream depends on every earlier call, the N perturbations are a
fixed set drawn once from a seeded generator, so a photo gets the same template in any process and
in any order.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from visionlake.errors import ModelUnavailable
from visionlake.faces.dlib_files import resnet_onnx_bytes

CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: dlib's jitter_image ranges: rotation in degrees, crop height as a fraction of the chip, shift.
JITTER_MAX_DEGREES = 3.0
JITTER_HEIGHT = (0.97, 0.99999)
JITTER_SHIFT = 0.02


@functools.lru_cache(maxsize=8)
def jitter_params(n: int, seed: int = 0) -> tuple[tuple[float, float, float, float, bool], ...]:
    """``n`` fixed perturbations (dx, dy, height fraction, angle in radians, mirror) in dlib's ranges.

    Cached, hence a tuple: every caller shares the one set.
    """
    rng = np.random.default_rng(seed)
    out: list[tuple[float, float, float, float, bool]] = []
    for _ in range(max(0, int(n))):
        dx, dy = rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, size=2)
        height = rng.uniform(*JITTER_HEIGHT)
        angle = np.deg2rad(rng.uniform(-JITTER_MAX_DEGREES, JITTER_MAX_DEGREES))
        out.append((float(dx), float(dy), float(height), float(angle), bool(rng.random() > 0.5)))
    return tuple(out)


def l2_normalise(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (v / n).astype(np.float32)


class DlibEmbedder:
    """Embeds aligned chips with dlib's face ResNet (``face_recognition_model_v1`` weights).

    ``backend="onnx"`` (default) runs the same weights through onnxruntime (see below), several times
    faster than dlib's own CPU code; ``backend="dlib"`` uses dlib directly. The ONNX copy is checked
    against dlib on a probe chip when it loads and is dropped (dlib is used) if they disagree.
    """

    dim = 128

    def __init__(self, model_path: str, flip: bool = True, backend: str = "onnx", threads: int = 1,
                 jitters: int = 0) -> None:
        import dlib

        if int(jitters) < 0:
            raise ValueError(f"jitters must be 0 or more, not {jitters}")

        if not Path(model_path).exists():
            raise ModelUnavailable(f"dlib face model not found: {model_path}")
        try:
            self._net = dlib.face_recognition_model_v1(str(model_path))
        except RuntimeError as exc:
            raise ModelUnavailable(f"cannot load dlib face model {model_path}: {exc}") from exc
        self._dlib = dlib
        self.flip = flip
        self.jitters = int(jitters)
        self.backend = "dlib"
        self._ort: Any = None
        self._mean = np.asarray(DLIB_RGB_MEAN, dtype=np.float32)
        if backend == "onnx":
            self._load_onnx(model_path, threads)
        elif backend != "dlib":
            raise ValueError(f"unknown embedder backend {backend!r}; choose 'onnx' or 'dlib'")

    def _load_onnx(self, model_path: str, threads: int) -> None:
        try:
            import onnxruntime as ort

            model = read_dlib_resnet(model_path)
            self._mean = np.asarray(model["mean"], dtype=np.float32)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = max(1, int(threads))
            opts.inter_op_num_threads = 1
            onnx_bytes = resnet_onnx_bytes(model_path, dlib_resnet_onnx_bytes)  # built once, then read
            sess = ort.InferenceSession(onnx_bytes, sess_options=opts,
                                        providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - any failure means: use dlib itself
            return
        rng = np.random.default_rng(0)
        probe = rng.integers(0, 256, size=(CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
        ref = np.asarray(self._net.compute_face_descriptor(probe), dtype=np.float32)
        got = sess.run(None, {"x": self._to_input([probe])})[0][0]
        if float(np.abs(ref - got).max()) < 1e-3:
            self._ort = sess
            self.backend = "onnx"

    def _to_input(self, chips: list[np.ndarray]) -> np.ndarray:
        x = (np.stack(chips).astype(np.float32) - self._mean) / np.float32(256.0)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def chips(self, arr: np.ndarray, shapes: list[Any]) -> list[np.ndarray]:
        """Aligned 150x150 RGB chips, one per landmark set."""
        if not shapes:
            return []
        dets = self._dlib.full_object_detections()
        for s in shapes:
            dets.append(s)
        return list(self._dlib.get_face_chips(arr, dets, size=CHIP_SIZE, padding=CHIP_PADDING))

    def jittered(self, chip: np.ndarray, n: int) -> list[np.ndarray]:
        """``n`` fixed perturbations of one chip, cut the way dlib's ``jitter_image`` cuts them."""
        size = chip.shape[0]
        inner = size - 6  # dlib shrinks the chip's rectangle by 3 pixels on each side first
        centre = (size - 1) / 2.0
        out = []
        for dx, dy, height, angle, mirror in jitter_params(int(n)):
            box = inner / height
            cx, cy = centre + dx * inner, centre + dy * inner
            rect = self._dlib.drectangle(cx - (box - 1) / 2, cy - (box - 1) / 2, cx + (box - 1) / 2,
                                         cy + (box - 1) / 2)
            details = self._dlib.chip_details(rect, self._dlib.chip_dims(size, size), angle)
            crop = self._dlib.extract_image_chip(np.ascontiguousarray(chip), details)
            out.append(np.ascontiguousarray(crop[:, ::-1]) if mirror else crop)
        return out

    def _forward(self, batch: list[np.ndarray]) -> np.ndarray:
        if self._ort is not None:
            return np.asarray(self._ort.run(None, {"x": self._to_input(batch)})[0], dtype=np.float32)
        return np.asarray(self._net.compute_face_descriptor(batch), dtype=np.float32)

    def embed_chips(self, chips: list[np.ndarray], jitters: int | None = None) -> np.ndarray:
        """(n, 128) float32 unit vectors for aligned chips; ``jitters`` overrides the embedder's own."""
        k = self.jitters if jitters is None else int(jitters)
        if k < 0:
            raise ValueError(f"jitters must be 0 or more, not {k}")
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        n = len(chips)
        batch = list(chips)
        if self.flip:
            batch += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
        if k:
            for c in chips:
                batch += self.jittered(c, k)
        out = self._forward(batch)
        views = 2 if self.flip else 1
        total = out[:n].copy()
        if self.flip:
            total += out[n:2 * n]
        if k:
            total += out[views * n:].reshape(n, k, -1).sum(axis=1)
        return l2_normalise(total)


# ---------------------------------------------------------------------------------------------------
# dlib ResNet -> ONNX. dlib's own CPU convolution is several times slower than onnxruntime's, and the
# embedder is most of the per-face cost, so the same weights are read from dlib's .dat file and run
# through onnxruntime. The network is the one in dlib's dnn_face_recognition_ex.cpp (29 convolutions,
# affine layers folded into them); the result matches dlib's descriptors to float rounding, which
# ``DlibOnnxEmbedder`` checks once when it loads (falling back to dlib if they ever disagree).
# ---------------------------------------------------------------------------------------------------

#: dlib's input_rgb_image mean, used when the file's values cannot be read.
DLIB_RGB_MEAN = (122.782, 117.001, 104.298)


class _DlibReader:
    """Reads the parts of dlib's serialisation format that the face ResNet file uses."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int_(self) -> int:
        head = self.data[self.pos]
        size, neg = head & 0x0F, head & 0x80
        raw = self.data[self.pos + 1:self.pos + 1 + size]
        self.pos += 1 + size
        v = int.from_bytes(raw, "little")
        return -v if neg else v

    def float_(self) -> float:
        mantissa = self.int_()
        exponent = self.int_()
        return float(mantissa) * 2.0**exponent

    def tensor(self) -> np.ndarray:
        version = self.int_()
        if version != 2:
            raise ValueError(f"unexpected dlib tensor version {version}")
        n, k, nr, nc = self.int_(), self.int_(), self.int_(), self.int_()
        count = n * k * nr * nc
        out = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        return out

    def find(self, tag: bytes) -> bool:
        """Move just past the next serialised string ``tag``; False when there is none."""
        key = bytes([0x01, len(tag)]) + tag
        i = self.data.find(key, self.pos)
        if i < 0:
            return False
        self.pos = i + len(key)
        return True


def read_dlib_resnet(path: str) -> dict[str, Any]:
    """Conv (with the following affine folded in) and fc weights of dlib's face ResNet, in forward order."""
    data = Path(path).read_bytes()
    r = _DlibReader(data)
    mean = DLIB_RGB_MEAN
    if r.find(b"input_rgb_image_sized"):
        mean = (r.float_(), r.float_(), r.float_())
    r.pos = 0
    convs = []
    while r.find(b"con_4"):
        params = r.tensor()
        nf, nr, nc, sy, sx, py, px = (r.int_() for _ in range(7))
        n_in = (len(params) - nf) // (nf * nr * nc)
        if n_in * nf * nr * nc + nf != len(params):
            raise ValueError("inconsistent convolution size in dlib model file")
        w = params[: n_in * nf * nr * nc].reshape(nf, n_in, nr, nc)
        b = params[n_in * nf * nr * nc:]
        if not r.find(b"affine_"):
            raise ValueError("convolution without affine layer in dlib model file")
        ab = r.tensor()
        gamma, beta = ab[:nf], ab[nf:]
        convs.append({"w": w * gamma[:, None, None, None], "b": b * gamma + beta, "stride": (sy, sx),
                      "pad": (py, px)})
    r.pos = 0
    if not r.find(b"fc_2"):
        raise ValueError("no fc layer in dlib model file")
    _num_outputs, _num_inputs = r.int_(), r.int_()
    fc = r.tensor()
    if len(convs) != 29 or fc.size != 256 * 128:
        raise ValueError(f"unexpected dlib face ResNet layout ({len(convs)} convolutions, fc {fc.size})")
    return {"mean": mean, "convs": convs, "fc": fc.reshape(256, 128)}


def dlib_resnet_onnx_bytes(path: str) -> bytes:
    """An ONNX model (input ``x``: Nx3x150x150 float, mean-subtracted /256; output ``y``: Nx128)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = read_dlib_resnet(path)
    convs = iter(model["convs"])
    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def const(arr: np.ndarray, prefix: str) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def conv(x: str) -> str:
        c = next(convs)
        y = name("conv")
        nf, _, kr, kc = c["w"].shape
        nodes.append(helper.make_node("Conv", [x, const(c["w"], "w"), const(c["b"], "b")], [y],
                                      kernel_shape=[kr, kc], strides=list(c["stride"]),
                                      pads=[c["pad"][0], c["pad"][1], c["pad"][0], c["pad"][1]]))
        return y

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        y = name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [y], **attrs))
        return y

    def pad_to(x: str, have: tuple[int, int], want: tuple[int, int]) -> str:
        """Zero-pad channels and bottom/right, as dlib's add_prev does for unequal shapes."""
        (hk, hs), (wk, ws) = have, want
        if (hk, hs) == (wk, ws):
            return x
        pads = np.array([0, 0, 0, 0, 0, wk - hk, ws - hs, ws - hs], dtype=np.int64)
        return op("Pad", [x, const(pads, "pads")], mode="constant")

    def out_size(size: int, k: int, s: int, p: int) -> int:
        return 1 + (size + 2 * p - k) // s

    x, k, size = "x", 3, 150
    c0 = model["convs"][0]
    x = op("Relu", [conv(x)])
    k, size = c0["w"].shape[0], out_size(size, 7, c0["stride"][0], c0["pad"][0])
    x = op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
    size = out_size(size, 3, 2, 0)
    # (filters, number of plain residual blocks, whether the level starts with a downsampling block)
    levels = [(32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True), (256, 0, True)]
    conv_i = 1
    for nf, plain, down in levels:
        blocks = ([True] if down else []) + [False] * plain
        for is_down in blocks:
            first = model["convs"][conv_i]
            stride, pad = first["stride"][0], first["pad"][0]
            h = op("Relu", [conv(x)])
            h = conv(h)
            conv_i += 2
            hsize = out_size(size, 3, stride, pad)
            if is_down:
                skip = op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
                ssize = out_size(size, 2, 2, 0)
            else:
                skip, ssize = x, size
            new_size = max(hsize, ssize)
            a = pad_to(h, (nf, hsize), (max(nf, k), new_size))
            s = pad_to(skip, (k, ssize), (max(nf, k), new_size))
            x = op("Relu", [op("Add", [a, s])])
            k, size = max(nf, k), new_size
    x = op("GlobalAveragePool", [x])
    x = op("Flatten", [x], axis=1)
    nodes.append(helper.make_node("MatMul", [x, const(model["fc"], "fc")], ["y"]))
    graph = helper.make_graph(
        nodes, "dlib_face_resnet_v1",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 150, 150])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 128])],
        initializer=inits,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx_model.ir_version = 8
    onnx_model.doc_string = f"mean={list(model['mean'])}"
    onnx.checker.check_model(onnx_model)
    return onnx_model.SerializeToString()
