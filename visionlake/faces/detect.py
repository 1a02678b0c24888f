"""Face detection and 5-point landmarks with dlib, plus safe image loading.

Speed: the peer (``face_recognition``) runs dlib's HOG detector on the image upsampled twice in each
direction, which is 4x the pixels on small crops and 16M pixels on a 2000x2000 photo. Here HOG runs
on a copy whose longest side is capped (``max_side``) and without upsampling first; only when that
finds nothing do we upsample once, then (optionally) try dlib's CNN (MMOD) detector. Boxes are mapped
back to the original pixels and landmarks are predicted on the full-resolution image, so accuracy does
not depend on the detection scale.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionlake.config import MAX_FILE_BYTES, MAX_IMAGE_PIXELS
from visionlake.errors import BadInput, ModelUnavailable
from visionlake.faces.dlib_files import frontal_face_detector
from visionlake.faces.quality import face_quality
from visionlake.imageio import Rejected, decode_rgb

ImageLike = Image.Image | np.ndarray

#: How the shared decoder's reasons read in a face command's error message.
_DECODE_MESSAGES = {
    "not_an_image": "not an image (unrecognised format)",
    "too_many_pixels": "{detail} (decompression bomb guard)",
    "truncated": "corrupt or truncated image ({detail})",
    "corrupt": "corrupt or truncated image ({detail})",
}


def load_image(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | io.IOBase) -> Image.Image:
    """Open an image as RGB with its EXIF orientation applied, or raise :class:`BadInput` saying why.

    Checks the file size and the declared pixel count *before* decoding, so that a decompression
    bomb or a huge file is refused cheaply, and forces a full decode so that truncated files fail
    here rather than later inside a detector.
    """
    name = "image"
    if isinstance(path_or_bytes, bytes | bytearray):
        data = bytes(path_or_bytes)
        if not data:
            raise BadInput("image is empty (0 bytes)")
        if len(data) > MAX_FILE_BYTES:
            raise BadInput(f"image is {len(data)} bytes, over the limit of {MAX_FILE_BYTES}")
    elif isinstance(path_or_bytes, str | os.PathLike):
        p = Path(path_or_bytes)
        name = str(p)
        if not p.exists():
            raise BadInput(f"{name}: no such file")
        if p.is_dir():
            raise BadInput(f"{name}: is a folder, not an image")
        size = p.stat().st_size
        if size == 0:
            raise BadInput(f"{name}: file is empty (0 bytes)")
        if size > MAX_FILE_BYTES:
            raise BadInput(f"{name}: {size} bytes, over the limit of {MAX_FILE_BYTES}")
        data = p.read_bytes()
    elif hasattr(path_or_bytes, "read"):
        data = path_or_bytes.read()
    else:
        raise BadInput(f"cannot read an image from a {type(path_or_bytes).__name__}")
    try:
        image, _fmt, _notes = decode_rgb(data, MAX_IMAGE_PIXELS)
    except Rejected as rej:
        message = _DECODE_MESSAGES.get(rej.reason, "{detail}").format(detail=rej.detail)
        raise BadInput(f"{name}: {message}") from None
    return image


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """A C-contiguous uint8 HxWx3 array (what dlib wants) from a PIL image or an array."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise BadInput(f"expected an HxWx3 RGB image array, got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def model_paths() -> dict[str, str]:
    """Locations of dlib's model files in the ``face_recognition_models`` package."""
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelUnavailable("the 'face_recognition_models' package is not installed") from exc
    return {
        "shape5": frm.pose_predictor_five_point_model_location(),
        "shape68": frm.pose_predictor_model_location(),
        "resnet": frm.face_recognition_model_location(),
        "cnn": frm.cnn_face_detector_model_location(),
    }


@dataclass
class RawDetection:
    """A detector hit in original-image pixels, before landmarks."""

    left: float
    top: float
    right: float
    bottom: float
    score: float
    stage: str  # which step of the fallback chain found it
    points: np.ndarray | None = None  # 5 keypoints when the detector gives them (YuNet), else None


class DlibDetector:
    """HOG (optionally CNN) face detector plus dlib's landmark predictor.

    ``landmarks`` picks the predictor: ``5`` (dlib's 5-point model, what dlib's embedder was aligned
    with) or ``68``, reduced to SCRFD-style points (eye centres, nose tip, mouth corners) for ArcFace
    style alignment.
    """

    def __init__(self, detector: str = "hog", max_side: int = 1024, upsample_fallback: bool = True,
                 cnn_fallback: bool = True, cnn_max_side: int = 500, min_score: float = 0.0,
                 landmarks: int = 5, detector_path: str | None = None) -> None:
        import dlib

        if detector not in ("hog", "cnn"):
            raise BadInput(f"unknown dlib detector {detector!r}; choose 'hog' or 'cnn'")
        paths = model_paths()
        self.detector = detector
        self.max_side = int(max_side)
        self.upsample_fallback = upsample_fallback
        self.cnn_fallback = cnn_fallback
        self.cnn_max_side = int(cnn_max_side)
        self.min_score = float(min_score)
        self.landmark_count = landmarks
        self._hog = frontal_face_detector()  # dlib's, read from its saved copy (building it costs ~0.6 s)
        self._cnn_path = detector_path or paths["cnn"]
        self._cnn: Any = None
        self._cnn_lock = threading.Lock()
        shape_path = paths["shape5"] if landmarks == 5 else paths["shape68"]
        if not Path(shape_path).exists():
            raise ModelUnavailable(f"landmark model missing: {shape_path}")
        self._shape = dlib.shape_predictor(shape_path)
        self._dlib = dlib

    # ------------------------------------------------------------------ detection
    def _cnn_model(self) -> Any:
        with self._cnn_lock:
            if self._cnn is None:
                if not Path(self._cnn_path).exists():
                    raise ModelUnavailable(f"CNN face detector model missing: {self._cnn_path}")
                self._cnn = self._dlib.cnn_face_detection_model_v1(str(self._cnn_path))
        return self._cnn

    @staticmethod
    def _scaled(arr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
        h, w = arr.shape[:2]
        longest = max(h, w)
        if max_side <= 0 or longest <= max_side:
            return arr, 1.0
        scale = max_side / longest
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = Image.fromarray(arr).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(small), scale

    def _hog_run(self, arr: np.ndarray, upsample: int, scale: float, stage: str) -> list[RawDetection]:
        rects, scores, _ = self._hog.run(arr, upsample, self.min_score)
        return [
            RawDetection(r.left() / scale, r.top() / scale, (r.right() + 1) / scale,
                         (r.bottom() + 1) / scale, float(s), stage)
            for r, s in zip(rects, scores, strict=True)
        ]

    def _cnn_run(self, arr: np.ndarray, stage: str, max_side: int) -> list[RawDetection]:
        small, scale = self._scaled(arr, max_side)
        up = 1 if max(small.shape[:2]) <= max_side // 2 else 0
        dets = self._cnn_model()(small, up)
        out = []
        for d in dets:
            r = d.rect
            out.append(RawDetection(r.left() / scale, r.top() / scale, (r.right() + 1) / scale,
                                    (r.bottom() + 1) / scale, float(d.confidence), stage))
        return out

    def find(self, arr: np.ndarray) -> list[RawDetection]:
        """Boxes in original pixels, trying cheaper steps first and stopping at the first hit."""
        if self.detector == "cnn":
            return self._cnn_run(arr, "cnn", self.max_side)
        small, scale = self._scaled(arr, self.max_side)
        found = self._hog_run(small, 0, scale, "hog")
        if not found and self.upsample_fallback:
            found = self._hog_run(small, 1, scale, "hog-up1")
        if not found and self.cnn_fallback:
            # the CNN is ~40x slower than HOG: run it on a small copy, only when HOG found nothing
            found = self._cnn_run(arr, "cnn", self.cnn_max_side)
        # keep boxes that overlap the image at all, clipped to it
        h, w = arr.shape[:2]
        out = []
        for d in found:
            d.left, d.top = max(0.0, d.left), max(0.0, d.top)
            d.right, d.bottom = min(float(w), d.right), min(float(h), d.bottom)
            if d.right - d.left >= 4 and d.bottom - d.top >= 4:
                out.append(d)
        return out

    # ------------------------------------------------------------------ landmarks
    def shape(self, arr: np.ndarray, box: tuple[float, float, float, float]) -> Any:
        """dlib ``full_object_detection`` for a box (left, top, right, bottom) on the full image."""
        left, top, right, bottom = box
        rect = self._dlib.rectangle(int(round(left)), int(round(top)), int(round(right)) - 1,
                                    int(round(bottom)) - 1)
        return self._shape(arr, rect)

    def landmarks(self, shape: Any) -> list[tuple[float, float]]:
        """5 points: dlib's own for the 5-point model, SCRFD-style when the 68-point model is used."""
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        if len(pts) == 68:
            pts = np.array([pts[36:42].mean(axis=0), pts[42:48].mean(axis=0), pts[30], pts[48], pts[54]])
        return [(round(float(x), 2), round(float(y), 2)) for x, y in pts]

    def shape_from_landmarks(self, box: tuple[int, int, int, int],
                             landmarks: list[tuple[float, float]]) -> Any:
        """Rebuild a dlib 5-point ``full_object_detection`` from stored landmarks (for re-embedding)."""
        left, top, right, bottom = box
        rect = self._dlib.rectangle(int(left), int(top), int(right) - 1, int(bottom) - 1)
        pts = [self._dlib.point(int(round(x)), int(round(y))) for x, y in landmarks]
        return self._dlib.full_object_detection(rect, pts)


def quality_patch(arr: np.ndarray, box: tuple[float, float, float, float], size: int = 64) -> np.ndarray:
    """Grey 64x64 patch of the face box, for the sharpness part of the quality score."""
    left, top, right, bottom = (int(round(v)) for v in box)
    crop = arr[max(0, top):max(top + 1, bottom), max(0, left):max(left + 1, right)]
    if crop.size == 0:
        return np.zeros((size, size), dtype=np.uint8)
    return np.asarray(Image.fromarray(crop).convert("L").resize((size, size), Image.Resampling.BILINEAR))


__all__ = ["DlibDetector", "ImageLike", "RawDetection", "face_quality", "load_image", "model_paths",
           "quality_patch", "to_rgb_array"]
