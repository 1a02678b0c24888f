"""Faces: detect, align, embed, verify; a small public API in the spirit of ``face_recognition``.

The functions below share one lazily built :class:`FacePipeline` (dlib pack) per process, so that
``face_encodings(img)`` in a loop does not reload models.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from visionlake.faces.identify import Gallery
from visionlake.faces.pipeline import DetectedFace, FacePipeline, calibrated_threshold, load_image

if TYPE_CHECKING:
    from visionlake.lake import Lake

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
    """Face boxes as ``(top, right, bottom, left)`` tuples in pixels, the order of
    ``face_recognition.face_locations`` (code written for it works unchanged). The CLI and the REST
    API report boxes as ``[left, top, right, bottom]`` under the name ``box``."""
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


def compare_faces(known: Any, candidate: np.ndarray, tolerance: float | None = None, *,
                  far: float = 1e-3) -> list[bool]:
    """True for each known vector that matches ``candidate``: ``face_distance(known, candidate) <= tolerance``.

    As in ``face_recognition``, ``tolerance`` is a *distance* and lower is stricter. The distance is
    this library's cosine distance (0 = identical, 2 = opposite), not dlib's Euclidean one, so
    face_recognition's 0.6 does not carry over. Without ``tolerance`` the calibrated operating point
    of the default pack at false accept rate ``far`` (1e-2, 1e-3 or 1e-4) is used: at 1e-3 that is
    ``1 - 0.9295 = 0.0705``.
    """
    if tolerance is None:
        tolerance = 1.0 - calibrated_threshold(default_pipeline().name, far)
    return [bool(d <= tolerance + 1e-7) for d in face_distance(known, candidate)]


def open_gallery(lake: Lake | str | os.PathLike[str] | None = None, collection: str = "people",
                 pipeline: Any = None) -> Gallery:
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
