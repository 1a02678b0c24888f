"""The face pipeline: detect (boxes, 5 landmarks, quality) -> align -> embed.

Two packs behind one small interface:

- ``dlib`` (default, offline): dlib's HOG detector with an upsample and CNN fallback, dlib's 5-point
  landmarks, dlib's ResNet embedder (128-d) from the ``face_recognition_models`` package;
- ``onnx``: an ArcFace-style ONNX embedder given by path (512-d for insightface ArcFace and OpenCV
  SFace); detection by a YuNet ONNX model when ``detector_path`` ends in ``.onnx`` (its 5 keypoints
  align the face), else dlib's detector with the 68-point landmark model reduced to the 5 ArcFace points.

Vectors are float32 and L2-normalised; ``name`` identifies the embedding space so that a lake never
mixes vectors from different packs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionlake.errors import BadInput
from visionlake.faces.detect import (
    DlibDetector,
    ImageLike,
    load_image,
    model_paths,
    quality_patch,
    to_rgb_array,
)
from visionlake.faces.embed import DlibEmbedder
from visionlake.faces.quality import face_quality
from visionlake.faces.thresholds import calibrated_threshold


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


class FacePipeline:
    """Detect, align and embed faces with one pack of models.

    Options (``**opts``): ``max_side`` (longest side HOG runs on, default 1024), ``upsample_fallback``
    (default True), ``cnn_fallback`` (dlib CNN when HOG finds nothing, default True), ``flip`` (average
    the embedding of the chip and its mirror, default True for dlib), ``jitters`` (dlib pack: also
    average N perturbed copies of each chip, dlib's ``num_jitters``; N times slower to embed, default 0),
    ``backend`` (``onnx``: dlib's weights run by onnxruntime, the default, or ``dlib``), ``min_score``
    (HOG score cut, dlib's default 0.0), ``threads`` (onnxruntime threads), ``mean``/``std`` (ONNX input normalisation).
    """

    def __init__(self, pack: str = "dlib", detector: str = "hog", embedder_path: str | None = None,
                 detector_path: str | None = None, **opts: Any) -> None:
        self.pack = pack
        self.timings: dict[str, float] = {"detect_s": 0.0, "landmarks_s": 0.0, "align_s": 0.0, "embed_s": 0.0}
        det_opts = {k: opts[k] for k in ("max_side", "upsample_fallback", "cnn_fallback", "cnn_max_side",
                                         "min_score") if k in opts}
        onnx_detector = detector_path is not None and str(detector_path).endswith(".onnx")
        if onnx_detector and pack != "onnx":
            raise BadInput("an ONNX (YuNet) detector gives ArcFace-style keypoints: use it with pack='onnx'; "
                           "the dlib pack takes a dlib MMOD .dat file as detector_path")
        if pack == "dlib":
            self.detector = DlibDetector(detector=detector, landmarks=5, detector_path=detector_path,
                                         **det_opts)
            path = embedder_path or model_paths()["resnet"]
            self.embedder: Any = DlibEmbedder(path, flip=bool(opts.get("flip", True)),
                                              backend=str(opts.get("backend", "onnx")),
                                              threads=int(opts.get("threads", 1)),
                                              jitters=int(opts.get("jitters", 0)))
            self.dim = 128
            self.name = "dlib-resnet-v1"
        elif pack == "onnx":
            if not embedder_path:
                raise BadInput("the onnx face pack needs embedder_path (an ArcFace-style .onnx file)")
            from visionlake.faces.onnx_pack import OnnxArcFaceEmbedder

            if onnx_detector:
                from visionlake.faces.onnx_pack import YuNetDetector

                self.detector = YuNetDetector(
                    str(detector_path), max_side=int(opts.get("max_side", 640)),
                    score_threshold=float(opts.get("score_threshold", 0.6)), threads=int(opts.get("threads", 1)))
            else:
                self.detector = DlibDetector(detector=detector, landmarks=68, detector_path=detector_path,
                                             **det_opts)
            self.embedder = OnnxArcFaceEmbedder(
                embedder_path, mean=float(opts.get("mean", 127.5)), std=float(opts.get("std", 127.5)),
                threads=int(opts.get("threads", 1)), flip=bool(opts.get("flip", False)))
            self.dim = self.embedder.dim
            self.name = f"onnx-{Path(embedder_path).stem}-{self.dim}"
        else:
            raise BadInput(f"unknown face pack {pack!r}; choose 'dlib' or 'onnx'")

    # ------------------------------------------------------------------ detection
    def _detect_arr(self, arr: np.ndarray) -> tuple[list[DetectedFace], list[Any]]:
        t0 = time.perf_counter()
        raw = self.detector.find(arr)
        t1 = time.perf_counter()
        faces, shapes = [], []
        for d in raw:
            box_f = (d.left, d.top, d.right, d.bottom)
            if d.points is not None:  # the detector gave keypoints (YuNet): no landmark model needed
                shape, lms = None, self.detector.landmarks(d.points)
            else:
                shape = self.detector.shape(arr, box_f)
                lms = self.detector.landmarks(shape)
            box = (int(round(d.left)), int(round(d.top)), int(round(d.right)), int(round(d.bottom)))
            q = face_quality(box[2] - box[0], box[3] - box[1], quality_patch(arr, box_f), lms)
            faces.append(DetectedFace(box=box, landmarks=lms, score=round(d.score, 4), quality=q,
                                      stage=d.stage))
            shapes.append(shape)
        self.timings["detect_s"] += t1 - t0
        self.timings["landmarks_s"] += time.perf_counter() - t1
        return faces, shapes

    def detect(self, image: ImageLike) -> list[DetectedFace]:
        """Faces in the image, largest first; empty when there is none."""
        faces, _ = self._detect_arr(to_rgb_array(image))
        return sorted(faces, key=lambda f: -f.area)

    # ------------------------------------------------------------------ embedding
    def _embed_arr(self, image: ImageLike, arr: np.ndarray, faces: list[DetectedFace],
                   shapes: list[Any] | None, jitters: int | None = None) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), dtype=np.float32)
        t0 = time.perf_counter()
        if self.pack == "dlib":
            if shapes is None:
                shapes = [self.detector.shape_from_landmarks(f.box, f.landmarks) for f in faces]
            crops = self.embedder.chips(arr, shapes)
            t1 = time.perf_counter()
            vecs = self.embedder.embed_chips(crops, jitters=jitters)
        else:
            pil = image if isinstance(image, Image.Image) else Image.fromarray(arr)
            crops = [self.embedder.crop(pil, np.asarray(f.landmarks)) for f in faces]
            t1 = time.perf_counter()
            vecs = self.embedder.embed_crops(crops)
        self.timings["align_s"] += t1 - t0
        self.timings["embed_s"] += time.perf_counter() - t1
        return vecs

    def embed(self, image: ImageLike, faces: list[DetectedFace], jitters: int | None = None) -> np.ndarray:
        """(n, dim) float32 unit vectors, one per face, from the faces' stored landmarks.

        ``jitters`` (dlib pack) overrides the pipeline's own count for this call: enrollment spends
        more time on a few photos to get steadier templates than ingestion can afford per photo.
        """
        return self._embed_arr(image, to_rgb_array(image), faces, None, jitters)

    def crop(self, image: ImageLike, face: DetectedFace, size: int = 160) -> Image.Image:
        """Aligned face thumbnail (eyes level, face centred) of ``size`` x ``size`` pixels."""
        arr = to_rgb_array(image)
        if self.pack == "dlib":
            shape = self.detector.shape_from_landmarks(face.box, face.landmarks)
            import dlib

            return Image.fromarray(dlib.get_face_chip(arr, shape, size=size, padding=0.25))
        pil = image if isinstance(image, Image.Image) else Image.fromarray(arr)
        from visionlake.faces.align import arcface_crop

        aligned = arcface_crop(pil, np.asarray(face.landmarks), 112)
        return aligned.resize((size, size), Image.Resampling.BILINEAR)

    def analyse(self, image: ImageLike) -> list[tuple[DetectedFace, np.ndarray]]:
        """Detect and embed every face: [(face, vector)], largest face first."""
        arr = to_rgb_array(image)
        faces, shapes = self._detect_arr(arr)
        if not faces:
            return []
        vecs = self._embed_arr(image, arr, faces, shapes)
        pairs = list(zip(faces, vecs, strict=True))
        pairs.sort(key=lambda p: -p[0].area)
        return pairs

    def threshold(self, far: float = 1e-3) -> float:
        """Calibrated cosine-similarity threshold of this pack at a false accept rate."""
        return calibrated_threshold(self.name, far)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit vectors: rows of ``a`` against rows of ``b``."""
    return np.asarray(a, dtype=np.float32).reshape(-1, a.shape[-1]) @ np.asarray(b, dtype=np.float32).reshape(
        -1, b.shape[-1]).T


__all__ = ["DetectedFace", "FacePipeline", "calibrated_threshold", "cosine_similarity", "load_image"]
