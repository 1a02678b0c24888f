"""The face pipeline: detect (boxes, 5 landmarks, quality) -> align -> embed, for any face pack.

The pipeline composes a pack's :class:`~visionlake.faces.protocols.Detector` and
:class:`~visionlake.faces.protocols.Embedder` (see :mod:`visionlake.faces.packs`); it never branches
on pack names. Packs: ``dlib`` (default, offline, free to use), ``arcface-s`` (SCRFD-500M + ArcFace
MobileFaceNet, 512-d, non-commercial weights), ``onnx`` (ArcFace-style files by path).

Vectors are float32 and L2-normalised; ``name`` identifies the embedding space so that a lake never
mixes vectors from different packs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PIL import Image

from visionlake.faces.detect import ImageLike, load_image, quality_patch, to_rgb_array
from visionlake.faces.protocols import DetectedFace, Found
from visionlake.faces.quality import face_quality
from visionlake.faces.thresholds import calibrated_threshold


class FacePipeline:
    """Detect, align and embed faces with one pack of models.

    Options (``**opts``) go to the pack's ``build``. dlib pack: ``max_side`` (longest side HOG runs
    on, default 1024), ``upsample_fallback``, ``cnn_fallback`` (default True), ``flip`` (default True),
    ``jitters`` (also average N perturbed copies, dlib's ``num_jitters``, default 0), ``backend``
    (``onnx`` or ``dlib``), ``min_score``, ``threads``. arcface-s: ``max_side`` (640), ``score_threshold``
    (0.5), ``flip`` (True), ``threads``, ``model_dir``. onnx: ``embedder_path``, ``detector_path``,
    ``mean``/``std``, ``flip``.
    """

    def __init__(self, pack: str = "dlib", detector: str | None = None, embedder_path: str | None = None,
                 detector_path: str | None = None, **opts: Any) -> None:
        from visionlake.faces.packs import build_pack

        if detector is not None:
            opts["detector"] = detector
        if embedder_path is not None:
            opts["embedder_path"] = embedder_path
        if detector_path is not None:
            opts["detector_path"] = detector_path
        self.pack = pack
        self.timings: dict[str, float] = {"detect_s": 0.0, "landmarks_s": 0.0, "align_s": 0.0, "embed_s": 0.0}
        built = build_pack(pack, **opts)
        self.detector = built.detector
        self.embedder = built.embedder
        self.licence = built.licence
        self.commercial_use = built.commercial_use
        self.options = built.options
        self.dim = int(self.embedder.dim)
        self.name = str(self.embedder.name)

    # ------------------------------------------------------------------ detection
    def _detect_arr(self, arr: np.ndarray) -> tuple[list[DetectedFace], list[Any]]:
        t0 = time.perf_counter()
        raw: list[Found] = self.detector.detect(arr)
        faces, aux = [], []
        for d in raw:
            box = (int(round(d.box[0])), int(round(d.box[1])), int(round(d.box[2])), int(round(d.box[3])))
            q = face_quality(box[2] - box[0], box[3] - box[1], quality_patch(arr, d.box), d.landmarks)
            faces.append(DetectedFace(box=box, landmarks=list(d.landmarks), score=round(d.score, 4), quality=q,
                                      stage=d.stage))
            aux.append(d.aux)
        self.timings["detect_s"] += time.perf_counter() - t0
        return faces, aux

    def detect(self, image: ImageLike) -> list[DetectedFace]:
        """Faces in the image, largest first; empty when there is none."""
        faces, _ = self._detect_arr(to_rgb_array(image))
        return sorted(faces, key=lambda f: -f.area)

    # ------------------------------------------------------------------ embedding
    def _embed_arr(self, arr: np.ndarray, faces: list[DetectedFace], aux: list[Any] | None,
                   jitters: int | None = None) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), dtype=np.float32)
        t0 = time.perf_counter()
        crops = self.embedder.align(arr, faces, aux)
        t1 = time.perf_counter()
        vecs = self.embedder.embed_aligned(crops, jitters=jitters)
        self.timings["align_s"] += t1 - t0
        self.timings["embed_s"] += time.perf_counter() - t1
        return vecs

    def embed(self, image: ImageLike, faces: list[DetectedFace], jitters: int | None = None) -> np.ndarray:
        """(n, dim) float32 unit vectors, one per face, from the faces' stored landmarks.

        ``jitters`` (dlib pack) overrides the pipeline's own count for this call: enrollment spends
        more time on a few photos to get steadier templates than ingestion can afford per photo.
        """
        return self._embed_arr(to_rgb_array(image), faces, None, jitters)

    def crop(self, image: ImageLike, face: DetectedFace, size: int = 160) -> Image.Image:
        """Aligned face thumbnail (eyes level, face centred) of ``size`` x ``size`` pixels."""
        return self.embedder.thumbnail(to_rgb_array(image), face, size)

    def analyse(self, image: ImageLike) -> list[tuple[DetectedFace, np.ndarray]]:
        """Detect and embed every face: [(face, vector)], largest face first."""
        return self.analyse_many([image])[0]

    def analyse_many(self, images: list[ImageLike]) -> list[list[tuple[DetectedFace, np.ndarray]]]:
        """``analyse`` for several images, embedding every face of all of them in one batched call."""
        arrs = [to_rgb_array(im) for im in images]
        found = [self._detect_arr(a) for a in arrs]
        t0 = time.perf_counter()
        crops: list[np.ndarray] = []
        for arr, (faces, aux) in zip(arrs, found, strict=True):
            if faces:
                crops += self.embedder.align(arr, faces, aux)
        t1 = time.perf_counter()
        vecs = self.embedder.embed_aligned(crops) if crops else np.zeros((0, self.dim), np.float32)
        self.timings["align_s"] += t1 - t0
        self.timings["embed_s"] += time.perf_counter() - t1
        out, k = [], 0
        for faces, _ in found:
            pairs = list(zip(faces, vecs[k:k + len(faces)], strict=True))
            k += len(faces)
            pairs.sort(key=lambda p: -p[0].area)
            out.append(pairs)
        return out

    def threshold(self, far: float = 1e-3) -> float:
        """Calibrated cosine-similarity threshold of this pack at a false accept rate."""
        return calibrated_threshold(self.name, far)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit vectors: rows of ``a`` against rows of ``b``."""
    return np.asarray(a, dtype=np.float32).reshape(-1, a.shape[-1]) @ np.asarray(b, dtype=np.float32).reshape(
        -1, b.shape[-1]).T


__all__ = ["DetectedFace", "FacePipeline", "calibrated_threshold", "cosine_similarity", "load_image"]
