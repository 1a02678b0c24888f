"""The default pack: dlib's HOG detector (upsample and CNN fallbacks), dlib's 5-point landmarks and
dlib's ResNet embedder (128-d) from the ``face_recognition_models`` package. Free to use."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from visionlake.errors import BadInput
from visionlake.faces.detect import DlibDetector, model_paths
from visionlake.faces.embed import DlibEmbedder
from visionlake.faces.protocols import Found, Pack

SPACE = "dlib-resnet-v1"
DET_KEYS = ("max_side", "upsample_fallback", "cnn_fallback", "cnn_max_side", "min_score")


class DlibFaceDetector:
    """dlib's detector chain plus its 5-point shape predictor; the shape travels as ``aux``.

    ``yunet`` (optional, MIT-licensed YuNet) finds boxes where HOG found none (``fallback="yunet"``,
    instead of dlib's CNN) or always (``detector="yunet"``). Its own keypoints (eye centres, nose tip,
    mouth corners) are not dlib's five points, so dlib's shape predictor still places the landmarks
    the embedder was trained with, inside YuNet's box.
    """

    def __init__(self, inner: DlibDetector, yunet: Any = None, yunet_only: bool = False) -> None:
        self.inner = inner
        self.yunet = yunet
        self.yunet_only = yunet_only

    def _boxes(self, arr: np.ndarray) -> list[Any]:
        if self.yunet is not None and self.yunet_only:
            return self.yunet.find(arr)
        found = self.inner.find(arr)
        if not found and self.yunet is not None:
            found = self.yunet.find(arr)
        return found

    def detect(self, arr: np.ndarray) -> list[Found]:
        out = []
        for d in self._boxes(arr):
            box = (d.left, d.top, d.right, d.bottom)
            shape = self.inner.shape(arr, box)
            out.append(Found(box, self.inner.landmarks(shape), float(d.score), d.stage, shape))
        return out


class DlibFaceEmbedder:
    """dlib's ResNet on dlib's own 150x150 chips (``get_face_chips``, padding 0.25)."""

    name = SPACE
    dim = 128

    def __init__(self, inner: DlibEmbedder, shapes: DlibDetector) -> None:
        self.inner = inner
        self.shapes = shapes  # rebuilds a dlib shape from stored landmarks when none is given

    @property
    def backend(self) -> str:
        return self.inner.backend

    def _shape(self, face: Any, aux: Any) -> Any:
        if aux is not None:
            return aux
        box = tuple(int(round(v)) for v in face.box)
        return self.shapes.shape_from_landmarks(box, face.landmarks)  # type: ignore[arg-type]

    def align(self, arr: np.ndarray, faces: list[Any], aux: list[Any] | None = None) -> list[np.ndarray]:
        aux = aux or [None] * len(faces)
        return self.inner.chips(arr, [self._shape(f, a) for f, a in zip(faces, aux, strict=True)])

    def embed_aligned(self, crops: list[np.ndarray], jitters: int | None = None) -> np.ndarray:
        return self.inner.embed_chips(crops, jitters=jitters)

    def thumbnail(self, arr: np.ndarray, face: Any, size: int) -> Image.Image:
        import dlib

        return Image.fromarray(dlib.get_face_chip(arr, self._shape(face, None), size=size, padding=0.25))


def _yunet(threads: int) -> Any:
    """YuNet from the model registry (``visionlake models fetch yunet``), run by onnxruntime."""
    from visionlake.faces.onnx_pack import YuNetDetector
    from visionlake.models import model_file

    return YuNetDetector(model_file("yunet", "face_detection_yunet_2023mar.onnx"), max_side=640,
                         score_threshold=0.6, threads=threads)


def build(detector: str = "hog", embedder_path: str | None = None, detector_path: str | None = None,
          flip: bool = True, backend: str = "onnx", threads: int = 1, jitters: int = 0, fallback: str = "cnn",
          **opts: Any) -> Pack:
    """The dlib pack; ``detector`` is ``hog`` (default, with fallbacks), ``cnn`` or ``yunet``; ``fallback``
    (after HOG and its upsampled retry found nothing) is ``cnn`` (dlib's, default), ``yunet`` or ``none``."""
    if detector_path is not None and str(detector_path).endswith(".onnx"):
        raise BadInput("an ONNX (YuNet) detector gives ArcFace-style keypoints: use it with pack='onnx'; "
                       "the dlib pack takes a dlib MMOD .dat file as detector_path")
    if detector not in ("hog", "cnn", "yunet") or fallback not in ("cnn", "yunet", "none"):
        raise BadInput(f"dlib pack: detector must be hog, cnn or yunet and fallback cnn, yunet or none "
                       f"(got {detector!r}, {fallback!r})")
    det_opts = {k: opts[k] for k in DET_KEYS if k in opts}
    if fallback != "cnn" or detector == "yunet":
        det_opts["cnn_fallback"] = False
    yunet = _yunet(int(threads)) if "yunet" in (detector, fallback) else None
    inner = DlibDetector(detector="hog" if detector == "yunet" else detector, landmarks=5,
                         detector_path=detector_path, **det_opts)
    emb = DlibEmbedder(embedder_path or model_paths()["resnet"], flip=bool(flip), backend=str(backend),
                       threads=int(threads), jitters=int(jitters))
    return Pack("dlib", DlibFaceDetector(inner, yunet, yunet_only=detector == "yunet"), DlibFaceEmbedder(emb, inner),
                licence="dlib models: free to use", commercial_use=True,
                options={"detector": detector, "fallback": fallback, "flip": bool(flip), "jitters": int(jitters),
                         **det_opts})
