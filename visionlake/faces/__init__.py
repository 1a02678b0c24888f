"""Faces: detect, align, embed, verify; a small public API in the spirit of ``face_recognition``.

The functions below share one lazily built :class:`FacePipeline` (dlib pack) per process, so that
``face_encodings(img)`` in a loop does not reload models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from visionlake.faces.identify import Gallery
from visionlake.faces.pipeline import DetectedFace, FacePipeline, calibrated_threshold, load_image

_DEFAULT: FacePipeline | None = None


def default_pipeline() -> FacePipeline:
    """The process-wide default pipeline (dlib pack), built on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = FacePipeline()
    return _DEFAULT


def _image(img: Any) -> Any:
    if isinstance(img, str | bytes | bytearray) or hasattr(img, "__fspath__"):
        return load_image(img)
    return img


def face_locations(img: Any) -> list[tuple[int, int, int, int]]:
    """Face boxes as (top, right, bottom, left) tuples, like ``face_recognition.face_locations``."""
    return [(f.box[1], f.box[2], f.box[3], f.box[0]) for f in default_pipeline().detect(_image(img))]


def face_encodings(img: Any) -> list[np.ndarray]:
    """One 128-d unit vector per face found, largest face first."""
    return [v for _, v in default_pipeline().analyse(_image(img))]


def face_distance(known: Any, candidate: np.ndarray) -> np.ndarray:
    """Cosine distance (1 - cosine similarity) of ``candidate`` to each known vector; 0 = identical."""
    k = np.asarray(known, dtype=np.float32)
    if k.size == 0:
        return np.zeros((0,), dtype=np.float32)
    k = k.reshape(-1, k.shape[-1])
    c = np.asarray(candidate, dtype=np.float32).reshape(-1)
    return (1.0 - k @ c).astype(np.float32)


def compare_faces(known: Any, candidate: np.ndarray, threshold: float | None = None) -> list[bool]:
    """True for each known vector that matches ``candidate`` (cosine similarity >= threshold).

    The default threshold is the default pack's calibrated one at a false accept rate of 1e-3.
    """
    if threshold is None:
        threshold = calibrated_threshold(default_pipeline().name, 1e-3)
    return [bool(1.0 - d >= threshold) for d in face_distance(known, candidate)]


def open_gallery(lake: Any = None, collection: str = "people", pipeline: Any = None) -> Gallery:
    """A faces collection opened for repeated identification: ``g.identify("photo.jpg")`` or
    ``g.identify_vectors(face_encodings(img))``. ``lake`` is a :class:`~visionlake.lake.Lake` or its
    folder (default: ``VISIONLAKE_LAKE`` / ``./lake``). Keep the object: it caches names, pack and
    thresholds and re-reads them only when the collection changes."""
    from visionlake.lake import Lake

    lk = lake if isinstance(lake, Lake) else Lake(lake, create=False)
    return Gallery(lk, collection, pipeline=pipeline)


__all__ = [
    "DetectedFace",
    "FacePipeline",
    "Gallery",
    "calibrated_threshold",
    "compare_faces",
    "default_pipeline",
    "face_distance",
    "face_encodings",
    "face_locations",
    "load_image",
    "open_gallery",
]
