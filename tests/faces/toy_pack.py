"""A fourth face pack in one module (used by test_packs.py to show that adding a pack needs nothing else)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from visionlake.faces.protocols import Found, Pack


class CentreDetector:
    """'Finds' one face: the middle half of the image, with five fixed landmarks."""

    def detect(self, arr: np.ndarray) -> list[Found]:
        h, w = arr.shape[:2]
        box = (w / 4, h / 4, 3 * w / 4, 3 * h / 4)
        lms = [(w * 0.4, h * 0.4), (w * 0.6, h * 0.4), (w * 0.5, h * 0.5), (w * 0.42, h * 0.6), (w * 0.58, h * 0.6)]
        return [Found(box, lms, 0.9, "toy")]


class MeanColourEmbedder:
    """3-d 'template': the mean colour of the face box, unit length."""

    name = "toy-space"
    dim = 3

    def align(self, arr: np.ndarray, faces: list[Any], aux: list[Any] | None = None) -> list[np.ndarray]:
        return [arr[int(f.box[1]):int(f.box[3]), int(f.box[0]):int(f.box[2])] for f in faces]

    def embed_aligned(self, crops: list[np.ndarray], jitters: int | None = None) -> np.ndarray:
        v = np.array([c.reshape(-1, 3).mean(axis=0) + 1e-3 for c in crops], dtype=np.float32).reshape(-1, 3)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def thumbnail(self, arr: np.ndarray, face: Any, size: int) -> Image.Image:
        return Image.fromarray(self.align(arr, [face])[0]).resize((size, size))


def build(**opts: Any) -> Pack:
    return Pack("toy", CentreDetector(), MeanColourEmbedder(), licence="test", options=opts)
