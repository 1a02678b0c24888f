"""The three small interfaces a face pack is made of: a detector, an embedder and the pipeline.

Why: the pipeline used to branch on pack names (``if pack == "dlib"``) in detection, alignment,
embedding and cropping. Each embedder now owns its alignment (as insightface's model classes do:
dlib's embedder wants dlib's 150x150 chip, ArcFace models the 112x112 five-point template), and each
detector returns the five landmarks it found (plus whatever private object its embedder can reuse,
such as dlib's shape). :class:`visionlake.faces.pipeline.FacePipeline` only composes them, so a new
pack is one module in :mod:`visionlake.faces.packs` that returns a :class:`Pack`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image


@dataclass
class DetectedFace:
    """One face: box (left, top, right, bottom) in original pixels, 5 landmarks, scores."""

    box: tuple[int, int, int, int]
    landmarks: list[tuple[float, float]]
    score: float
    quality: float
    stage: str = field(default="hog", compare=False)  # which detector step found it

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for the catalog and the CLI)."""
        d = asdict(self)
        d["box"] = list(self.box)
        d["landmarks"] = [list(p) for p in self.landmarks]
        return d


@dataclass
class Found:
    """What a detector returns for one face, before the pipeline scores its quality.

    ``aux`` is private to the pack (dlib's ``full_object_detection``): the embedder of the same pack
    may reuse it to skip recomputing landmarks; any other code ignores it.
    """

    box: tuple[float, float, float, float]  # left, top, right, bottom (float, clipped to the image)
    landmarks: list[tuple[float, float]]  # 5 points: the order the pack's embedder aligns with
    score: float
    stage: str
    aux: Any = None


@runtime_checkable
class Detector(Protocol):
    """Finds faces and their 5 landmarks in an RGB uint8 array."""

    def detect(self, arr: np.ndarray) -> list[Found]:
        """Faces in the image (any order), boxes clipped to the image."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Aligns faces the way its model was trained and turns the aligned crops into unit vectors."""

    #: Name of the embedding space: templates with different names are never compared.
    name: str
    dim: int

    def align(self, arr: np.ndarray, faces: list[Any], aux: list[Any] | None = None) -> list[np.ndarray]:
        """The model's input crop (HxWx3 uint8) for each face (DetectedFace or Found)."""
        ...

    def embed_aligned(self, crops: list[np.ndarray], jitters: int | None = None) -> np.ndarray:
        """(n, dim) float32 unit vectors for aligned crops, batched in one model call where possible."""
        ...

    def thumbnail(self, arr: np.ndarray, face: Any, size: int) -> Image.Image:
        """An aligned review thumbnail (eyes level, face centred) of ``size`` x ``size`` pixels."""
        ...


@dataclass
class Pack:
    """A detector and an embedder that belong together, with what a user must know about them."""

    pack: str  # the name a user picks (``dlib``, ``arcface-s``, ``onnx``)
    detector: Detector
    embedder: Embedder
    licence: str = ""
    commercial_use: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # the effective settings (for reports)


@runtime_checkable
class Pipeline(Protocol):
    """What the gallery, ingestion, benches and the service use (see ``FacePipeline``)."""

    pack: str
    name: str
    dim: int

    def detect(self, image: Any) -> list[DetectedFace]: ...

    def embed(self, image: Any, faces: list[DetectedFace], jitters: int | None = None) -> np.ndarray: ...

    def analyse(self, image: Any) -> list[tuple[DetectedFace, np.ndarray]]: ...

    def crop(self, image: Any, face: DetectedFace, size: int = 160) -> Image.Image: ...

    def threshold(self, far: float = 1e-3) -> float: ...


__all__ = ["DetectedFace", "Detector", "Embedder", "Found", "Pack", "Pipeline"]
