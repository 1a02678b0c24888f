"""``arcface-s``: insightface's buffalo_s models, SCRFD-500M detection with 5 keypoints and the
w600k_mbf ArcFace MobileFaceNet embedder (512-d, trained on WebFace600K).

Licence: InsightFace's pretrained weights are for **non-commercial research use only**; a lake uses
this pack only after ``visionlake faces use-pack arcface-s --accept-licence non-commercial``
(see :mod:`visionlake.faces.licence`). Files come from the model registry
(``visionlake models fetch arcface-s``), verified by SHA-256, or from ``model_dir``.

Defaults (chosen on LFW View 1 only, see the README): detection at most 640 px on the longest side
without upscaling (speed: a 250 px photo costs a 256x256 pass; every View 1 face was found, the
lowest best-face score 0.63; insightface's 640 px input, ``max_upscale`` 2.56, did not help on View 1:
10 vs 5 errors on pairsDevTest, same margin, 3 faces missed, +56% CPU), score threshold 0.5, NMS
IoU 0.4 (insightface's); crops warped with cv2's pixel-centre convention (``align_centres``
"cv2": not a tuned choice but the preprocessing the model was trained with, see ``align.py``; "pil"
keeps the half-pixel-shifted crops of earlier releases for comparison); plain embeddings for
ingestion and probes, flip-added for enrollment (``jitters > 0``; see ``arcface.py``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import numpy as np

from visionlake.errors import BadInput, ModelUnavailable
from visionlake.faces.align import CENTRES
from visionlake.faces.onnx_pack import OnnxArcFaceEmbedder
from visionlake.faces.packs.arcface import ArcFaceEmbedder
from visionlake.faces.protocols import Found, Pack
from visionlake.faces.scrfd import ScrfdDetector

MODEL = "arcface-s"
EMBEDDER_FILE = "w600k_mbf.onnx"
DETECTOR_FILE = "scrfd_500m_bnkps.onnx"
SPACE = "arcface-s"
LICENCE = "InsightFace pretrained models: non-commercial research use only"

#: defaults chosen on LFW View 1 (see the module docstring)
DEFAULT_MAX_SIDE = 640
DEFAULT_SCORE = 0.5
DEFAULT_FLIP = False
#: warp pixel-centre convention: insightface's training crops (cv2.warpAffine), see ``align.py``
DEFAULT_ALIGN_CENTRES = "cv2"


def default_threads() -> int:
    """onnxruntime threads per session: 1 inside worker processes (each worker owns a core), else up
    to 2 (an interactive command on a small box uses both cores without oversubscribing)."""
    if mp.parent_process() is not None:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def model_files(model_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """(embedder, detector) paths: from ``model_dir`` when given, else the verified registry copy."""
    if model_dir is not None:
        d = Path(model_dir)
        emb, det = d / EMBEDDER_FILE, d / DETECTOR_FILE
        for p in (emb, det):
            if not p.is_file():
                raise ModelUnavailable(f"{p} not found (run `visionlake models fetch {MODEL}`)")
        return emb, det
    try:
        from visionlake.models import model_file
    except ImportError as exc:  # pragma: no cover - the registry ships with visionlake
        raise ModelUnavailable(f"model registry unavailable: {exc}") from exc
    return model_file(MODEL, EMBEDDER_FILE), model_file(MODEL, DETECTOR_FILE)


class ScrfdFaceDetector:
    """Detector protocol over :class:`ScrfdDetector`: boxes clipped to the image, 5 keypoints."""

    def __init__(self, inner: ScrfdDetector) -> None:
        self.inner = inner

    def detect(self, arr: np.ndarray) -> list[Found]:
        h, w = arr.shape[:2]
        out = []
        for d in self.inner.detect(arr):
            x1, y1, x2, y2 = d.box
            box = (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            lms = [(round(float(x), 2), round(float(y), 2)) for x, y in d.points.reshape(5, 2)]
            out.append(Found(box, lms, float(d.score), "scrfd"))
        return out


def build(model_dir: str | None = None, max_side: int = DEFAULT_MAX_SIDE, score_threshold: float = DEFAULT_SCORE,
          nms_iou: float = 0.4, flip: bool = DEFAULT_FLIP, threads: int | None = None, max_upscale: float = 1.0,
          align_centres: str = DEFAULT_ALIGN_CENTRES, **_ignored: Any) -> Pack:
    """Load both sessions once (callers keep the pipeline per process).

    dlib-only options that generic callers pass (``detector``, ``jitters``, ``backend``...) are ignored.
    """
    if align_centres not in CENTRES:
        raise BadInput(f"align_centres must be one of {', '.join(CENTRES)}, not {align_centres!r}")
    emb_path, det_path = model_files(model_dir)
    n = default_threads() if threads is None else max(1, int(threads))
    det = ScrfdDetector(det_path, max_side=int(max_side), score_threshold=float(score_threshold),
                        nms_iou=float(nms_iou), max_upscale=float(max_upscale), threads=n)
    emb = OnnxArcFaceEmbedder(emb_path, mean=127.5, std=127.5, threads=n, flip=bool(flip))
    return Pack("arcface-s", ScrfdFaceDetector(det), ArcFaceEmbedder(emb, SPACE, align_centres), licence=LICENCE,
                commercial_use=False,
                options={"max_side": int(max_side), "score_threshold": float(score_threshold), "flip": bool(flip),
                         "max_upscale": float(max_upscale), "threads": n, "align_centres": align_centres})
