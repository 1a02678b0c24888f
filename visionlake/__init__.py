"""visionlake: turn very large photo collections into answers.

A tiny public API, in the spirit of ``face_recognition``::

    import visionlake as vl
    img = vl.load_image("photo.jpg")
    boxes = vl.face_locations(img)             # [(top, right, bottom, left), ...] as face_recognition
    encodings = vl.face_encodings(img)
    vl.compare_faces(known_encodings, encodings[0])  # tolerance= is a distance: lower is stricter

and the lake for collections at scale::

    lake = vl.Lake("lake")
    lake.create_collection("products", "fashion")
    vl.ingest(lake, "photos/", "products", meta="styles.csv")

Heavy modules (dlib, onnxruntime, FAISS) load on first use, so ``import visionlake`` is cheap.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"


def ingest(lake: Any, source: Any, collection: str, **options: Any) -> dict[str, Any]:
    """Ingest ``source`` (folder, manifest, or an iterable of paths) into ``collection`` of ``lake``.

    The same function as :func:`visionlake.ingest.pipeline.ingest` (see it for ``meta``, ``workers``,
    ``include``/``exclude``, ``progress``...); it returns the run's report (counts, rejections, speed).
    """
    from visionlake.ingest.pipeline import ingest as run

    return run(lake, source, collection, **options)


class _Package(types.ModuleType):
    """The ``visionlake`` module: keeps ``visionlake.ingest`` the function once the subpackage of the same
    name is imported (Python's import system would otherwise bind the subpackage over it, and
    ``vl.ingest(...)`` would fail with "'module' object is not callable" after, say, ``vl.Lake``).
    ``import visionlake.ingest.pipeline`` and ``from visionlake.ingest import ...`` are unaffected: they
    read ``sys.modules``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "ingest" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

_LAZY = {
    "Lake": "visionlake.lake",
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


__all__ = sorted([*_LAZY, "ingest"])
