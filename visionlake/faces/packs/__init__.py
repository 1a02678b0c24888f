"""Face packs: which detector and embedder go together, looked up by name.

A pack is one module exposing ``build(**opts) -> Pack`` (see :mod:`visionlake.faces.protocols`).
Adding a pack is adding a module and one line to :data:`PACKS`; nothing else in the face code
branches on pack names. ``PACK_INFO`` says, without loading any model, what each pack is: the
embedding space name its templates carry (``Face.pack`` in the catalog, the key of the calibrated
thresholds), its licence and whether using it needs a recorded acceptance in the lake.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from visionlake.errors import BadInput
from visionlake.faces.protocols import Pack

#: pack name -> "module:function" returning a :class:`Pack`.
PACKS: dict[str, str] = {
    "dlib": "visionlake.faces.packs.dlib_pack:build",
    "arcface-s": "visionlake.faces.packs.arcface_s:build",
    "onnx": "visionlake.faces.packs.onnx_path:build",
}


@dataclass(frozen=True)
class PackInfo:
    """What a user must know about a pack before any model is loaded."""

    pack: str
    space: str | None  # embedding space name (None: depends on the files given, e.g. ``onnx``)
    dim: int | None
    licence: str
    commercial_use: bool
    model: str | None  # name in the model registry (``visionlake models fetch NAME``), if any
    source: str


PACK_INFO: dict[str, PackInfo] = {
    "dlib": PackInfo("dlib", "dlib-resnet-v1", 128,
                     "dlib models: free to use (CC0 / Boost; dlib-models README)", True, None,
                     "face_recognition_models (PyPI), installed with visionlake"),
    "arcface-s": PackInfo("arcface-s", "arcface-s", 512,
                          "InsightFace pretrained models: non-commercial research use only", False, "arcface-s",
                          "insightface buffalo_s: SCRFD-500M + w600k_mbf (visionlake models fetch arcface-s)"),
    "onnx": PackInfo("onnx", None, None, "whatever the given model files' licences say", True, None,
                     "ONNX files given by path"),
}

#: the licence word a user types to accept a non-commercial pack
NON_COMMERCIAL = "non-commercial"


def pack_names() -> list[str]:
    """Every pack a user can pick."""
    return sorted(PACKS)


def pack_info(pack: str) -> PackInfo:
    """Facts about a pack; :class:`BadInput` listing the known packs otherwise."""
    if pack not in PACK_INFO:
        raise BadInput(f"unknown face pack {pack!r}; choose one of {', '.join(pack_names())}")
    return PACK_INFO[pack]


def pack_of_space(space: str) -> str | None:
    """Which pack writes templates named ``space`` (``Face.pack`` values), if a known one does."""
    for info in PACK_INFO.values():
        if info.space == space:
            return info.pack
    return "onnx" if space.startswith("onnx-") else None


def build_pack(pack: str = "dlib", **opts: Any) -> Pack:
    """Load a pack's models (once per call: callers cache the pipeline per process)."""
    if pack not in PACKS:
        raise BadInput(f"unknown face pack {pack!r}; choose one of {', '.join(pack_names())}")
    module, _, fn = PACKS[pack].partition(":")
    return getattr(importlib.import_module(module), fn)(**opts)  # type: ignore[no-any-return]


__all__ = ["NON_COMMERCIAL", "PACKS", "PACK_INFO", "PackInfo", "build_pack", "pack_info", "pack_names",
           "pack_of_space"]
