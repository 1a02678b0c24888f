"""One entry point for tagging: pick a backend, embed, zero-shot tag, apply trained heads and regions.

Why a separate module: the CLI (``fashion tag``), the ingestion analyser and the benchmark must load
models and combine zero-shot answers with trained heads in exactly the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from visionlake.errors import BadInput
from visionlake.fashion.onnx_tagger import OnnxFashionModel, Tag, ZeroShotTagger
from visionlake.fashion.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


def load_model(model: str | os.PathLike[str] | None = None, backend: str = "onnx", *, quantized: bool = False,
               batch_size: int = 16, threads: int | None = None) -> Any:
    """The embedding model: ONNX Runtime (default) or open_clip (``backend='open_clip'``, needs torch).

    Raises :class:`~visionlake.errors.ModelUnavailable` with a way out when it cannot be loaded.
    """
    if backend == "onnx":
        return OnnxFashionModel(model, quantized=quantized, batch_size=batch_size, threads=threads)
    if backend in ("open_clip", "openclip", "torch"):
        from visionlake.fashion.openclip_tagger import OpenClipFashionModel

        name = str(model) if model else "hf-hub:Marqo/marqo-fashionSigLIP"
        return OpenClipFashionModel(name, batch_size=batch_size, threads=threads)
    raise BadInput(f"unknown backend {backend!r}; choose onnx or open_clip")


class FashionTagger:
    """Embeds photos and answers every taxonomy attribute; trained heads override zero-shot answers."""

    def __init__(self, model: Any, taxonomy: Taxonomy | None = None, threshold: float = 0.4,
                 heads: dict[str, Any] | None = None, regions: bool = True,
                 attributes: Sequence[str] | None = None) -> None:
        self.model = model
        self.taxonomy = taxonomy or load_taxonomy()
        self.zero_shot = ZeroShotTagger(model, self.taxonomy, threshold=threshold, attributes=attributes)
        self.heads = heads or {}
        self.regions = regions
        self.threshold = threshold

    def tag(self, images: Sequence[PILImage.Image], with_scores: bool = False
            ) -> tuple[np.ndarray, list[list[Tag]]]:
        """(embeddings, tags per image). Region tags (upper/lower) are added for whole-person photos."""
        emb = self.model.embed_images(list(images))
        tags = self.zero_shot.tag_embeddings(emb, "whole", with_scores=with_scores)
        for column, head in self.heads.items():
            for i, t in enumerate(head.predict_tags(emb, column, self.threshold)):
                tags[i] = [x for x in tags[i] if x.attribute != column] + [t]
        if self.regions:
            from visionlake.fashion.regions import crop_regions

            crops: list[tuple[int, str, PILImage.Image]] = []
            for i, im in enumerate(images):
                for name, crop in crop_regions(im).items():
                    crops.append((i, name, crop))
            if crops:
                remb = self.model.embed_images([c for _, _, c in crops])
                for (i, name, _), row in zip(crops, remb, strict=True):
                    tags[i].extend(self.zero_shot.tag_embeddings(row[None, :], name)[0])
        return emb, tags


def load_heads(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Trained heads saved under a collection's ``heads`` folder, by label column."""
    from visionlake.fashion.heads import TrainedHead

    out: dict[str, Any] = {}
    p = Path(folder)
    if p.is_dir():
        for f in sorted(p.glob("*.joblib")):
            try:
                out[f.stem] = TrainedHead.load(f)
            except Exception as exc:  # a damaged head must not stop tagging
                log.warning("skipping trained head %s: %s", f, exc)
    return out
