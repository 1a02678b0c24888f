"""Analysers and which of them run for each collection purpose."""

from __future__ import annotations

import importlib
from typing import Any

from visionlake.analysers.base import Analyser, DecodedImage, WorkerContext
from visionlake.areas import AREAS

#: Analyser name -> "module:Class": the thumbnail, then each area's (declared in :mod:`visionlake.areas`);
#: import is lazy (models are heavy).
REGISTRY: dict[str, str] = {
    "thumbnail": "visionlake.analysers.thumbnail:ThumbnailAnalyser",
    **{name: ref for area in AREAS for name, ref in area.analysers},
}

#: Collection purpose -> analysers run on ingestion, in order: ``plain`` makes thumbnails only, each
#: area with analysers is a purpose of its own name.
PURPOSES: dict[str, list[str]] = {
    "plain": ["thumbnail"],
    **{area.name: ["thumbnail", *(name for name, _ref in area.analysers)] for area in AREAS if area.analysers},
}


def build_analysers(purpose: str, settings: dict[str, Any] | None = None) -> list[Analyser]:
    """Instantiate the analysers of a purpose; ``settings['analysers']`` may override the list."""
    settings = settings or {}
    names = settings.get("analysers") or PURPOSES.get(purpose)
    if names is None:
        raise ValueError(f"unknown collection purpose {purpose!r}; choose one of {sorted(PURPOSES)}")
    out = []
    for name in names:
        # a "module:Class" name is an analyser outside this registry (plug-ins, tests)
        spec = REGISTRY.get(name) or (name if ":" in name else None)
        if spec is None:
            raise ValueError(f"unknown analyser {name!r}; known: {', '.join(sorted(REGISTRY))}")
        module_name, _, cls_name = spec.partition(":")
        cls = getattr(importlib.import_module(module_name), cls_name)
        out.append(cls(**settings.get(f"{name}_options", {})))
    return out


__all__ = ["PURPOSES", "REGISTRY", "Analyser", "DecodedImage", "WorkerContext", "build_analysers"]
