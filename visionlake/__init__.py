"""visionlake: turn very large photo collections into answers.

A tiny public API, in the spirit of ``face_recognition``::

    import visionlake as vl
    img = vl.load_image("photo.jpg")
    boxes = vl.face_locations(img)
    encodings = vl.face_encodings(img)
    vl.compare_faces(known_encodings, encodings[0])

and the lake for collections at scale::

    lake = vl.Lake("lake")
    lake.create_collection("products", "fashion")
    vl.ingest(lake, "photos/", "products", meta="styles.csv")

Heavy modules (dlib, onnxruntime, FAISS) load on first use, so ``import visionlake`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Lake": "visionlake.lake",
    "ingest": "visionlake.ingest",
    "open_index": "visionlake.index",
    "load_image": "visionlake.faces",
    "face_locations": "visionlake.faces",
    "face_encodings": "visionlake.faces",
    "compare_faces": "visionlake.faces",
    "face_distance": "visionlake.faces",
    "FacePipeline": "visionlake.faces",
    "Gallery": "visionlake.faces",
    "open_gallery": "visionlake.faces",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'visionlake' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY)
