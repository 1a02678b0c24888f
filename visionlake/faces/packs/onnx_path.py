"""The ONNX-by-path pack: any ArcFace-style embedder file, with a YuNet file (``detector_path`` ending
in ``.onnx``) or dlib's detector and 68-point landmarks reduced to the 5 ArcFace points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from visionlake.errors import BadInput
from visionlake.faces.detect import DlibDetector
from visionlake.faces.onnx_pack import OnnxArcFaceEmbedder, YuNetDetector
from visionlake.faces.packs.arcface import ArcFaceEmbedder
from visionlake.faces.protocols import Found, Pack

DET_KEYS = ("max_side", "upsample_fallback", "cnn_fallback", "cnn_max_side", "min_score")


class KeypointDetector:
    """Adapter for detectors that give boxes with 5 keypoints (YuNet) or dlib + 68-point landmarks."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def detect(self, arr: np.ndarray) -> list[Found]:
        out = []
        for d in self.inner.find(arr):
            if d.points is not None:
                lms = [(round(float(x), 2), round(float(y), 2)) for x, y in np.asarray(d.points).reshape(5, 2)]
            else:
                lms = self.inner.landmarks(self.inner.shape(arr, (d.left, d.top, d.right, d.bottom)))
            out.append(Found((d.left, d.top, d.right, d.bottom), lms, float(d.score), d.stage))
        return out


def build(embedder_path: str | None = None, detector_path: str | None = None, detector: str = "hog",
          mean: float = 127.5, std: float = 127.5, threads: int = 1, flip: bool = False,
          **opts: Any) -> Pack:
    """ArcFace-style embedder by path (512-d for insightface and SFace); see the module docstring."""
    if not embedder_path:
        raise BadInput("the onnx face pack needs embedder_path (an ArcFace-style .onnx file)")
    if detector_path is not None and str(detector_path).endswith(".onnx"):
        inner: Any = YuNetDetector(str(detector_path), max_side=int(opts.get("max_side", 640)),
                                   score_threshold=float(opts.get("score_threshold", 0.6)), threads=int(threads))
    else:
        inner = DlibDetector(detector=detector, landmarks=68, detector_path=detector_path,
                             **{k: opts[k] for k in DET_KEYS if k in opts})
    emb = OnnxArcFaceEmbedder(embedder_path, mean=float(mean), std=float(std), threads=int(threads), flip=bool(flip))
    space = f"onnx-{Path(embedder_path).stem}-{emb.dim}"
    return Pack("onnx", KeypointDetector(inner), ArcFaceEmbedder(emb, space),
                licence="see the model files' own licences", commercial_use=True,
                options={"embedder_path": str(embedder_path), "detector_path": detector_path, "flip": bool(flip)})
