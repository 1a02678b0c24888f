"""Analysers and which of them run for each collection purpose."""

from __future__ import annotations

import importlib
from typing import Any

from visionlake.analysers.base import Analyser, DecodedImage, WorkerContext

#: Analyser name -> "module:Class". Areas register theirs here; import is lazy (models are heavy).
REGISTRY: dict[str, str] = {
    "thumbnail": "visionlake.analysers.thumbnail:ThumbnailAnalyser",
    "faces": "visionlake.faces.analyser:FaceAnalyser",
    "colour": "visionlake.fashion.analyser:ColourAnalyser",
    "tagger": "visionlake.fashion.analyser:TaggerAnalyser",
}

#: Collection purpose -> analysers run on ingestion, in order.
PURPOSES: dict[str, list[str]] = {
    "plain": ["thumbnail"],
    "faces": ["thumbnail", "faces"],
    "fashion": ["thumbnail", "colour", "tagger"],
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
