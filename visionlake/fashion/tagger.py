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

from visionlake.errors import BadInput, ModelUnavailable
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


#: collection setting where the model that embedded the collection is recorded (shown by ``info``)
MODEL_SETTING = "fashion_model"


def is_backbone_ref(model: str | os.PathLike[str] | None) -> bool:
    from visionlake.fashion.backbone import BACKBONE_NAME

    return model is not None and str(model) == BACKBONE_NAME


def choose_model(model: str | os.PathLike[str] | None = None, backend: str = "onnx", *,
                 recorded: dict[str, Any] | None = None, quantized: bool = False, batch_size: int = 16,
                 threads: int | None = None) -> Any:
    """The fashion model to use, in order of preference.

    * ``recorded`` (what a collection was embedded with) wins: queries must live in the same space;
    * ``model == "efficientnet-lite0"`` (or ``VISIONLAKE_FASHION_MODEL``) asks for the backbone;
    * otherwise FashionSigLIP (a local folder, or the hub), the only model that also reads text;
    * when that cannot be had and no folder was named explicitly, the offline EfficientNet-Lite0
      backbone from the model cache (``visionlake models fetch efficientnet-lite0``).

    Raises ModelUnavailable naming both ways out when neither is there.
    """
    from visionlake.fashion.backbone import BACKBONE_NAME, LAYOUT_POOLED, BackboneModel

    if recorded and recorded.get("name") == BACKBONE_NAME:
        # collections embedded before layouts existed have 1280-d pooled vectors and no "layout" key
        return BackboneModel(batch_size=max(batch_size, 1), threads=threads,
                             layout=recorded.get("layout") or LAYOUT_POOLED)
    if recorded and recorded.get("ref") and model is None:
        model = recorded["ref"]
    ref = model if model is not None else os.environ.get("VISIONLAKE_FASHION_MODEL") or None
    if is_backbone_ref(ref):
        return BackboneModel(batch_size=max(batch_size, 1), threads=threads)
    try:
        return load_model(model, backend, quantized=quantized, batch_size=batch_size, threads=threads)
    except ModelUnavailable as first:
        if ref is not None or recorded:  # the user (or the collection) named this model: no silent swap
            raise
        try:
            return BackboneModel(batch_size=max(batch_size, 1), threads=threads)
        except ModelUnavailable as second:
            raise ModelUnavailable(
                f"{first.message}. Or, offline: `visionlake models fetch {BACKBONE_NAME}` gives an image-only "
                f"backbone (search by photo, heads on your labels) [{second.message}]") from None


def model_record(model: Any, ref: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What is recorded per collection about the model that embedded it."""
    rec = {"name": str(getattr(model, "name", "")), "backend": str(getattr(model, "backend", "")),
           "dim": int(getattr(model, "dim", 0)), "text": bool(getattr(model, "text_capable", True))}
    if getattr(model, "layout", None):
        rec["layout"] = str(model.layout)
        # the index holds the pooled part of rows vectors (visionlake.fashion.index_vectors)
        rec["pooled_dim"] = int(getattr(model, "feature_dim", 0) or rec["dim"])
    if ref is not None and not is_backbone_ref(ref):
        rec["ref"] = str(ref)
    return rec


def model_for_collection(lake: Any, collection: str, model: str | os.PathLike[str] | None = None,
                         backend: str = "onnx", **kwargs: Any) -> Any:
    """The model a collection's vectors came from (so a query lands in the same space)."""
    col = lake.collection(collection)
    settings = col.settings or {}
    opts = settings.get("tagger_options") or {}
    return choose_model(model if model is not None else opts.get("model"),
                        backend if backend != "onnx" else opts.get("backend", "onnx"),
                        recorded=settings.get(MODEL_SETTING), **kwargs)


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

    @property
    def text_capable(self) -> bool:
        """Whether zero-shot (text) tags can be given; image-only backbones answer with heads only."""
        return bool(getattr(self.model, "text_capable", True))

    @property
    def model_name(self) -> str:
        return str(getattr(self.model, "name", ""))

    def tag(self, images: Sequence[PILImage.Image], with_scores: bool = False
            ) -> tuple[np.ndarray, list[list[Tag]]]:
        """(embeddings, tags per image). Region tags (upper/lower) are added for whole-person photos."""
        emb = self.model.embed_images(list(images))
        text = self.text_capable
        tags = (self.zero_shot.tag_embeddings(emb, "whole", with_scores=with_scores) if text
                else [[] for _ in range(len(emb))])
        for column, head in self.heads.items():
            if getattr(head, "dim", emb.shape[1]) != emb.shape[1]:  # trained on another model's vectors
                log.warning("head %r expects %s-d embeddings, %s gives %s-d: skipped (train it again)",
                            column, head.dim, self.model_name, emb.shape[1])
                continue
            for i, t in enumerate(head.predict_tags(emb, column, self.threshold)):
                tags[i] = [x for x in tags[i] if x.attribute != column] + [t]
        if self.regions and text:  # region tags are zero-shot answers: text models only
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
