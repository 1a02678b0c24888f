"""SCRFD face detector (insightface) run with onnxruntime: boxes and the 5 ArcFace keypoints.

SCRFD is anchor-based with two anchors per cell at strides 8, 16 and 32. For every stride the
network gives a face score per anchor, four distances from the anchor centre to the box sides and
ten offsets (x, y of 5 keypoints), all in units of the stride; decoding is insightface's
``distance2bbox`` / ``distance2kps`` followed by non-maximum suppression.

The graph has a dynamic input, so instead of insightface's fixed 640x640 letterbox the image is
resized keeping its aspect so that its longest side is ``max_side`` (never upscaled beyond
``max_upscale``) and zero-padded to multiples of 32: a 250x250 LFW photo costs a 256x256 pass, not a
640x640 one. Input is RGB, ``(x - 127.5) / 128``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionlake.errors import BadInput

STRIDES = (8, 16, 32)
NUM_ANCHORS = 2


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression on (x1, y1, x2, y2) boxes; indices kept, best first."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ov = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[ov <= iou]
    return keep


def anchor_centres(height: int, width: int, stride: int, num_anchors: int = NUM_ANCHORS) -> np.ndarray:
    """(height * width * num_anchors, 2) anchor centres in input pixels, row-major, anchors innermost."""
    ys, xs = np.mgrid[:height, :width]
    centres = (np.stack([xs, ys], axis=-1).astype(np.float32) * stride).reshape(-1, 2)
    return np.repeat(centres, num_anchors, axis=0) if num_anchors > 1 else centres


def distance2bbox(points: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Boxes (x1, y1, x2, y2) from anchor centres and distances to the left, top, right, bottom sides."""
    return np.stack([points[:, 0] - dist[:, 0], points[:, 1] - dist[:, 1],
                     points[:, 0] + dist[:, 2], points[:, 1] + dist[:, 3]], axis=-1)


def distance2kps(points: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(n, k, 2) keypoints from anchor centres and (n, 2k) offsets."""
    n, k2 = dist.shape
    return (dist.reshape(n, k2 // 2, 2) + points[:, None, :]).astype(np.float32)


@dataclass
class Detection:
    """One face in original pixels: box (x1, y1, x2, y2), score, 5x2 keypoints."""

    box: tuple[float, float, float, float]
    score: float
    points: np.ndarray


class ScrfdDetector:
    """Batched-friendly SCRFD wrapper; one onnxruntime session built once per process."""

    def __init__(self, path: str | Path, max_side: int = 640, score_threshold: float = 0.5,
                 nms_iou: float = 0.4, max_upscale: float = 1.0, threads: int = 1,
                 session: Any = None) -> None:
        from visionlake.faces.onnx_pack import make_session

        self.path = Path(path)
        self.session = session if session is not None else make_session(self.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.outputs = self._output_order(names)
        self.max_side = int(max_side)
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_upscale = float(max_upscale)
        if self.max_side < 32:
            raise BadInput(f"SCRFD max_side must be at least 32, not {max_side}")

    def _output_order(self, names: list[str]) -> dict[tuple[str, int], str]:
        """Map (kind, stride) -> output name; by name when the graph names them, else insightface's order."""
        want = {(k, s): f"{k}_{s}" for k in ("score", "bbox", "kps") for s in STRIDES}
        if set(want.values()) <= set(names):
            return want
        if len(names) != 9:
            raise BadInput(f"{self.path.name}: not an SCRFD detector with keypoints "
                           f"(expected 9 outputs, found {len(names)})")
        kinds = ("score", "bbox", "kps")
        return {(kinds[i // 3], STRIDES[i % 3]): n for i, n in enumerate(names)}

    def input_size(self, width: int, height: int) -> tuple[float, int, int, int, int]:
        """(scale, resized w, resized h, padded w, padded h) for an image of ``width`` x ``height``."""
        scale = min(self.max_side / max(width, height), self.max_upscale)
        nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
        return scale, nw, nh, -(-nw // 32) * 32, -(-nh // 32) * 32

    def blob(self, arr: np.ndarray) -> tuple[np.ndarray, float]:
        """The normalised NCHW input for one RGB uint8 image, and the scale applied to it."""
        h0, w0 = arr.shape[:2]
        scale, nw, nh, pw, ph = self.input_size(w0, h0)
        small = arr if (nw, nh) == (w0, h0) else np.asarray(
            Image.fromarray(arr).resize((nw, nh), Image.Resampling.BILINEAR))
        canvas = np.zeros((ph, pw, 3), dtype=np.float32)
        canvas[:nh, :nw] = (small.astype(np.float32) - 127.5) / 128.0
        return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]), scale

    def detect(self, arr: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, best score first, in original pixels."""
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise BadInput(f"expected an RGB image array (h, w, 3), got shape {arr.shape}")
        blob, scale = self.blob(arr)
        order = [self.outputs[(k, s)] for k in ("score", "bbox", "kps") for s in STRIDES]
        outs = dict(zip(order, self.session.run(order, {self.input_name: blob}), strict=True))
        return self.decode(outs, blob.shape[2], blob.shape[3], scale)

    def decode(self, outs: dict[str, np.ndarray], height: int, width: int, scale: float) -> list[Detection]:
        """Turn the 9 raw outputs for one image into detections (see the module docstring)."""
        boxes, scores, kps = [], [], []
        for s in STRIDES:
            sc = np.asarray(outs[self.outputs[("score", s)]]).reshape(-1)
            keep = np.nonzero(sc >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            centres = anchor_centres(height // s, width // s, s)
            if len(centres) != len(sc):
                raise BadInput(f"{self.path.name}: stride {s} gave {len(sc)} scores for {len(centres)} anchors")
            bb = np.asarray(outs[self.outputs[("bbox", s)]]).reshape(-1, 4)[keep] * s
            kp = np.asarray(outs[self.outputs[("kps", s)]]).reshape(-1, 10)[keep] * s
            boxes.append(distance2bbox(centres[keep], bb))
            kps.append(distance2kps(centres[keep], kp))
            scores.append(sc[keep])
        if not boxes:
            return []
        b = np.concatenate(boxes) / scale
        k = np.concatenate(kps) / scale
        sc_all = np.concatenate(scores)
        return [Detection(tuple(float(v) for v in b[i]), float(sc_all[i]), k[i])  # type: ignore[arg-type]
                for i in nms(b, sc_all, self.nms_iou)]


__all__ = ["Detection", "ScrfdDetector", "anchor_centres", "distance2bbox", "distance2kps", "nms"]
