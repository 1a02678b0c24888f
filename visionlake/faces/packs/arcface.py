"""ArcFace-family embedders: 5-point similarity alignment to the 112x112 template, then an ONNX model.

Shared by the ``arcface-s`` pack and the ONNX-by-path pack. Jitters (dlib's ``num_jitters``) are a
dlib-pack feature: an ArcFace model is embedded plain (optionally flip-added) whatever is asked,
because its template is already steady and each extra pass costs a full model run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from visionlake.faces.align import arcface_crop
from visionlake.faces.onnx_pack import OnnxArcFaceEmbedder


class ArcFaceEmbedder:
    """Owns ArcFace alignment; batches every face of a call into one onnxruntime run."""

    def __init__(self, inner: OnnxArcFaceEmbedder, name: str) -> None:
        self.inner = inner
        self.name = name
        self.dim = inner.dim
        self.size = inner.size

    @property
    def flip(self) -> bool:
        return bool(self.inner.flip)

    def align(self, arr: np.ndarray, faces: list[Any], aux: list[Any] | None = None) -> list[np.ndarray]:
        if not faces:
            return []
        pil = Image.fromarray(arr)
        return [np.asarray(arcface_crop(pil, np.asarray(f.landmarks, dtype=np.float64), self.size))
                for f in faces]

    def embed_aligned(self, crops: list[np.ndarray], jitters: int | None = None) -> np.ndarray:
        return self.inner.embed_crops(crops)

    def thumbnail(self, arr: np.ndarray, face: Any, size: int) -> Image.Image:
        return arcface_crop(Image.fromarray(arr), np.asarray(face.landmarks, dtype=np.float64), size)
