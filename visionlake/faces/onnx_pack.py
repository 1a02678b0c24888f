"""ONNX face models by path, run with onnxruntime.

The embedder is any ArcFace-style network: one NCHW float input of 3x112x112 (batch dimension fixed
to 1 or dynamic) and one output of D floats (512 for insightface's ArcFace R50/R100 and for OpenCV's
SFace). Faces are aligned with the standard ArcFace 5-point similarity transform (see ``align.py``).
Normalisation differs between model families, so it is an option: insightface models want
``(x - 127.5) / 127.5`` on RGB (the default), OpenCV SFace wants raw 0..255 RGB (``mean=0, std=1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionlake.errors import BadInput, ModelUnavailable
from visionlake.faces.align import arcface_crop
from visionlake.faces.embed import l2_normalise


def make_session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session with a fixed thread count (so worker processes do not oversubscribe)."""
    import onnxruntime as ort

    p = Path(path)
    if not p.exists():
        raise ModelUnavailable(f"ONNX model not found: {p}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # models declaring a fixed batch of 1 but running any batch warn per call
    try:
        return ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelUnavailable(f"cannot load ONNX model {p}: {exc}") from exc


class OnnxArcFaceEmbedder:
    """ArcFace-style embedder: aligned 112x112 RGB crop in, D-dimensional unit vector out."""

    def __init__(self, path: str | Path, mean: float = 127.5, std: float = 127.5, threads: int = 1,
                 flip: bool = False) -> None:
        self.path = Path(path)
        self.session = make_session(self.path, threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise BadInput(f"{self.path.name}: expected one input, found {len(inputs)}")
        inp = inputs[0]
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise BadInput(f"{self.path.name}: expected an Nx3xHxW input, found shape {shape}")
        h, w = shape[2], shape[3]
        self.size = int(h) if isinstance(h, int) else 112
        if isinstance(w, int) and w != self.size:
            raise BadInput(f"{self.path.name}: expected a square input, found {h}x{w}")
        self.input_name = inp.name
        self.fixed_batch = isinstance(shape[0], int)
        out_shape = self.session.get_outputs()[0].shape
        dim = out_shape[-1]
        if not isinstance(dim, int):
            probe = self._run(np.zeros((1, 3, self.size, self.size), dtype=np.float32))
            dim = probe.shape[-1]
        self.dim = int(dim)
        self.mean, self.std, self.flip = float(mean), float(std), flip

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.fixed_batch and len(batch) != 1:
            return np.concatenate([self._run(batch[i:i + 1]) for i in range(len(batch))])
        out = self.session.run(None, {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(batch), -1)

    def crop(self, image: Image.Image, points5: np.ndarray) -> Image.Image:
        """The aligned input crop for one face."""
        return arcface_crop(image, points5, self.size)

    def embed_crops(self, crops: list[Image.Image] | list[np.ndarray], flip: bool | None = None) -> np.ndarray:
        """(n, D) unit vectors for aligned crops (PIL images or HxWx3 uint8 arrays), one batched call.

        With ``flip`` the mirror image's embedding is added before normalising (the mirrored copies
        ride in the same batch, so the model runs once).
        """
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        flip = self.flip if flip is None else flip
        arr = np.stack([np.asarray(c.convert("RGB") if isinstance(c, Image.Image) else c, dtype=np.float32)
                        for c in crops])
        arr = ((arr - self.mean) / self.std).transpose(0, 3, 1, 2)
        batch = np.ascontiguousarray(arr, dtype=np.float32)
        n = len(batch)
        if flip:
            batch = np.concatenate([batch, np.ascontiguousarray(batch[:, :, :, ::-1])])
        out = self._run(batch)
        if flip:
            out = out[:n] + out[n:]
        return l2_normalise(out)


# ---------------------------------------------------------------------------------------------------
# YuNet face detector (OpenCV zoo, MIT licence): anchor-free outputs at strides 8/16/32, decoded as in
# OpenCV's FaceDetectorYN (cls/obj scores, box centre offsets + log sizes, 5 keypoints per anchor).
# ---------------------------------------------------------------------------------------------------

YUNET_STRIDES = (8, 16, 32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression on (x1, y1, x2, y2) boxes; indices kept, best first."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = np.array(order, dtype=int)
        if len(rest) == 0:
            break
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ov = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = [int(j) for j, o in zip(rest, ov, strict=True) if o <= iou]
    return keep


class YuNetDetector:
    """Boxes and 5 keypoints (eyes, nose tip, mouth corners: SCRFD/ArcFace order) from a YuNet model.

    The model takes a BGR 0..255 NCHW image whose sides are multiples of 32; the image is scaled so its
    longest side is at most ``max_side`` and zero-padded, and results are mapped back to original pixels.
    """

    def __init__(self, path: str | Path, max_side: int = 640, score_threshold: float = 0.6,
                 nms_iou: float = 0.3, threads: int = 1) -> None:
        self.path = Path(path)
        self.session = make_session(self.path, threads)
        names = [o.name for o in self.session.get_outputs()]
        want = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in YUNET_STRIDES]
        if sorted(names) != sorted(want):
            raise BadInput(f"{self.path.name}: not a YuNet detector (outputs {names}, expected {want})")
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        h, w = inp.shape[2], inp.shape[3]
        self.fixed = (int(h), int(w)) if isinstance(h, int) and isinstance(w, int) else None
        self.max_side, self.score_threshold, self.nms_iou = int(max_side), float(score_threshold), float(nms_iou)

    def find(self, arr: np.ndarray) -> list[Any]:
        """Same interface as ``DlibDetector.find``: RawDetection with ``points`` set, clipped to the image."""
        from visionlake.faces.detect import RawDetection

        h, w = arr.shape[:2]
        out = []
        for (x1, y1, x2, y2), score, pts in self.detect(arr):
            d = RawDetection(max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2), score, "yunet",
                             points=pts)
            if d.right - d.left >= 4 and d.bottom - d.top >= 4:
                out.append(d)
        return out

    def landmarks(self, points: np.ndarray) -> list[tuple[float, float]]:
        """5 keypoints as a list of rounded (x, y)."""
        return [(round(float(x), 2), round(float(y), 2)) for x, y in np.asarray(points).reshape(5, 2)]

    def detect(self, arr: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, np.ndarray]]:
        """[(box x1,y1,x2,y2, score, 5x2 keypoints)] in original pixels, best first."""
        h0, w0 = arr.shape[:2]
        if self.fixed:
            th, tw = self.fixed
            scale = min(th / h0, tw / w0)
        else:
            scale = min(1.0, self.max_side / max(h0, w0))
        nw, nh = max(1, round(w0 * scale)), max(1, round(h0 * scale))
        small = np.asarray(Image.fromarray(arr).resize((nw, nh), Image.Resampling.BILINEAR))
        ph, pw = self.fixed if self.fixed else (-(-nh // 32) * 32, -(-nw // 32) * 32)
        canvas = np.zeros((ph, pw, 3), dtype=np.float32)
        canvas[:nh, :nw] = small[:, :, ::-1]  # RGB -> BGR
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None])
        outs = dict(zip([o.name for o in self.session.get_outputs()],
                        self.session.run(None, {self.input_name: blob}), strict=True))
        boxes, scores, kps = [], [], []
        for s in YUNET_STRIDES:
            cols, rows = pw // s, ph // s
            cls = np.clip(outs[f"cls_{s}"].reshape(-1), 0, 1)
            obj = np.clip(outs[f"obj_{s}"].reshape(-1), 0, 1)
            bb = outs[f"bbox_{s}"].reshape(-1, 4)
            kp = outs[f"kps_{s}"].reshape(-1, 10)
            score = np.sqrt(cls * obj)
            for idx in np.nonzero(score >= self.score_threshold)[0]:
                r, c = divmod(int(idx), cols)
                if r >= rows:
                    continue
                cx, cy = (c + bb[idx, 0]) * s, (r + bb[idx, 1]) * s
                bw, bh = np.exp(bb[idx, 2]) * s, np.exp(bb[idx, 3]) * s
                boxes.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
                scores.append(float(score[idx]))
                pts = kp[idx].reshape(5, 2) + np.array([c, r], dtype=np.float32)
                kps.append(pts * s)
        if not boxes:
            return []
        b, sc = np.array(boxes) / scale, np.array(scores)
        return [(tuple(float(v) for v in b[i]), float(sc[i]), np.asarray(kps[i]) / scale)
                for i in nms(b, sc, self.nms_iou)]
