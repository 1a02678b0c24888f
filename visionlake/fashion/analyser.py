"""Ingestion analysers of fashion collections: ``colour`` (no model) and ``tagger`` (embeddings + tags).

The tagger degrades gracefully: with no model available it logs one warning per process and returns
nothing, so that a fresh offline machine still ingests, thumbnails and names colours.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from sqlalchemy import delete

from visionlake.analysers.base import Analyser, DecodedImage, WorkerContext
from visionlake.errors import ModelUnavailable

log = logging.getLogger(__name__)
_warned = False


class ColourAnalyser(Analyser):
    """Named garment colours with shares, plus the colour family as a ``colour`` tag.

    The named colours always come from the model-free method; the *family* comes from the collection's
    trained colour head when it has one (``fashion train-colour``; tag source ``colour-head``), else
    from the model-free vote (tag source ``colour``). Each result says which answered
    (``family_model``). Where the person-mask model is on the machine (``models fetch mediapipe-pose``
    and the ``person`` extra), photos of people take their garment pixels from it (``person_mask`` in
    the result; the collection records the model in its settings), else from the flood-filled
    foreground.
    """

    name = "colour"

    def __init__(self) -> None:
        self.head: Any = None
        self.backbone: Any = None
        self.masker: Any = None
        self._prepared = False

    def prepare(self, ctx: WorkerContext) -> None:
        from visionlake.fashion.colour_training import load_backbone, load_collection_head
        from visionlake.fashion.person_mask import load_person_masker

        self._prepared = True
        self.masker = load_person_masker()
        head = load_collection_head(ctx.collection_dir)
        if head is not None and head.needs_backbone:
            try:
                self.backbone = load_backbone(threads=_worker_threads())
            except ModelUnavailable as exc:
                log.warning("colour head needs the image backbone; the model-free method answers: %s",
                            exc.message)
                head = None
        self.head = head

    def analyse(self, images: list[DecodedImage], ctx: WorkerContext) -> list[dict[str, Any]]:
        """Model-free colours, then the head's family; each photo is segmented (and the pose model run on
        it) once and its garment pixels shared by both. They are local to this call: nothing is cached
        across calls, so a probe photo's pixels are gone when its answer is (privacy rule)."""
        from visionlake.fashion.colour import ColourSettings, analyse_colours, garment_pixels

        if not self._prepared:
            self.prepare(ctx)
        settings = ColourSettings()
        out: list[dict[str, Any]] = []
        garments: list[Any] = []
        for item in images:
            try:
                g = garment_pixels(item.image, settings, self.masker)
                res = analyse_colours(item.image, settings, garment=g).to_dict()
                res["family_model"] = "model-free"
                out.append({"colour": res})
            except Exception as exc:  # one odd image must not fail the batch
                g = None
                out.append({"colour": None, "error": f"colour: {exc}"})
            garments.append(g)
        ok = [i for i, r in enumerate(out) if r["colour"] is not None]
        if self.head is not None and ok:
            self._apply_head([images[i].image for i in ok], [out[i]["colour"] for i in ok],
                             [garments[i] for i in ok])
        return out

    def _apply_head(self, pics: list[Any], results: list[dict[str, Any]], garments: list[Any]) -> None:
        """Let the trained head pick each family from the same garment pixels; on failure the model-free
        families stay (logged)."""
        from visionlake.fashion.colour_head import image_features

        try:
            x = image_features(pics, self.head.features, self.backbone, garments=garments)
            fams, conf = self.head.predict(x), self.head.confidence(x)
        except Exception as exc:
            log.warning("colour head failed on a batch, the model-free method answered: %s", exc)
            return
        name = self.head.describe()["name"]
        for res, fam, c in zip(results, fams, conf, strict=True):
            res["family_model_free"] = res["family"]
            res["family"] = fam
            res["family_model"] = name
            res["family_confidence"] = None if not np.isfinite(c) else round(float(c), 4)

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        from visionlake.fashion.models import FashionColour, FashionTag

        res = result.get("colour")
        if not res:
            return
        session.execute(delete(FashionColour).where(FashionColour.image_id == image_id))
        session.execute(delete(FashionTag).where(FashionTag.image_id == image_id,
                                                 FashionTag.source.in_(COLOUR_SOURCES)))
        for c in res["colours"]:
            session.add(FashionColour(image_id=image_id, name=c["name"], family=c["family"], share=c["share"],
                                      hex=c["hex"]))
        if res.get("person_mask"):
            _record_person_mask(session, collection)
        learned = res.get("family_model", "model-free") != "model-free"
        conf = res.get("family_confidence") if learned else None
        if conf is None:
            conf = float(res["family_shares"].get(res["family"], 0.0))
        session.add(FashionTag(image_id=image_id, attribute="colour", value=res["family"], confidence=float(conf),
                               region="whole", source="colour-head" if learned else "colour"))


def _record_person_mask(session: Any, collection: Any) -> None:
    """Name the person-mask model in the collection's settings (once), so ``info`` shows what chose
    the garment pixels of its colours."""
    from visionlake.catalog.models import Collection
    from visionlake.fashion.person_mask import MODEL_NAME, PERSON_SETTING

    c = session.get(Collection, collection.id)
    if c is not None and (c.settings or {}).get(PERSON_SETTING) != MODEL_NAME:
        c.settings = dict(c.settings or {}) | {PERSON_SETTING: MODEL_NAME}  # reassigned: JSON is not tracked


#: Tag sources the colour analyser writes: the model-free vote, or the collection's trained head.
COLOUR_SOURCES = ("colour", "colour-head")


class TaggerAnalyser(Analyser):
    """Image embeddings into the collection's ``fashion`` index and taxonomy tags into ``fashion_tags``."""

    name = "tagger"

    def __init__(self, model: str | None = None, backend: str = "onnx", batch_size: int = 16,
                 threads: int | None = None, threshold: float = 0.4, quantized: bool = False,
                 regions: bool = True, taxonomy: str | None = None) -> None:
        self.model_ref = model
        self.backend = backend
        self.batch_size = batch_size
        self.threads = threads
        self.threshold = threshold
        self.quantized = quantized
        self.regions = regions
        self.taxonomy_path = taxonomy
        self.tagger: Any = None
        self._prepared = False
        self._dirty: set[str] = set()

    def prepare(self, ctx: WorkerContext) -> None:
        global _warned
        self._prepared = True
        from visionlake.fashion.tagger import MODEL_SETTING, FashionTagger, choose_model, load_heads
        from visionlake.fashion.taxonomy import load_taxonomy

        try:  # FashionSigLIP first; the offline backbone when it cannot be had; the collection's own if recorded
            model = choose_model(self.model_ref, self.backend, recorded=(ctx.settings or {}).get(MODEL_SETTING),
                                 quantized=self.quantized, batch_size=self.batch_size,
                                 threads=self.threads or _worker_threads())
        except ModelUnavailable as exc:
            if not _warned:
                log.warning("fashion tagger skipped (colour still runs): %s", exc.message)
                _warned = True
            self.tagger = None
            return
        heads = load_heads(ctx.collection_dir / "heads")
        self.tagger = FashionTagger(model, load_taxonomy(self.taxonomy_path), threshold=self.threshold,
                                    heads=heads, regions=self.regions)

    def analyse(self, images: list[DecodedImage], ctx: WorkerContext) -> list[dict[str, Any]]:
        if not self._prepared:
            self.prepare(ctx)
        if self.tagger is None or not images:
            return [{} for _ in images]
        from visionlake.fashion.tagger import model_record

        emb, tags = self.tagger.tag([i.image for i in images])
        record = model_record(self.tagger.model, self.model_ref)
        return [{"embedding": e.astype(np.float32).tolist(), "tags": [t.to_dict() for t in ts],
                 "model": record["name"], "model_record": record}
                for e, ts in zip(emb, tags, strict=True)]

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        from visionlake.catalog.models import Image
        from visionlake.fashion.models import FashionTag
        from visionlake.fashion.search import SPACE

        if not result or "embedding" not in result:
            return
        vec = np.asarray(result["embedding"], dtype=np.float32)
        session.execute(delete(FashionTag).where(FashionTag.image_id == image_id,
                                                 FashionTag.source.in_(("zero-shot", "head"))))
        for t in result["tags"]:
            session.add(FashionTag(image_id=image_id, attribute=t["attribute"], value=t["value"],
                                   confidence=float(t["confidence"]), region=t.get("region", "whole"),
                                   source=t.get("source", "zero-shot")))
        from visionlake.fashion.models import FashionEmbedding
        from visionlake.fashion.resync import fashion_meta

        # the catalog keeps the vector (source of truth); the index is a copy resynced from it
        session.merge(FashionEmbedding(image_id=image_id, model=str(result.get("model") or ""),
                                       dim=int(vec.shape[0]), vector=vec.tobytes()))
        _record_model(session, collection, result.get("model_record"))
        img = session.get(Image, image_id)
        meta = fashion_meta(img.meta if img is not None else None)
        from visionlake.fashion.index_vectors import index_vectors

        row = index_vectors(vec, result.get("model_record"))  # rows layout: the index holds the pooled part
        index = lake.index(collection.name, SPACE, int(row.shape[1]), "cosine")
        index.add([image_id], row, [meta])
        self._dirty.add(collection.name)

    def finalize(self, lake, collection) -> None:  # type: ignore[override]
        """Resync the index with what the catalog committed (a failed chunk may have added vectors
        whose rows rolled back), then save it."""
        from visionlake.fashion.resync import sync_fashion
        from visionlake.fashion.search import SPACE, space_dim

        if collection.name in self._dirty or space_dim(lake, collection.name) is None:
            sync_fashion(lake, collection.name, save=False)
            index = lake._indexes.get((collection.name, SPACE))
            if index is not None:
                index.save()
        self._dirty.discard(collection.name)


def _record_model(session: Any, collection: Any, record: dict[str, Any] | None) -> None:
    """Remember, once, which model embedded the collection (queries and later ingestion must match)."""
    from visionlake.catalog.models import Collection
    from visionlake.fashion.tagger import MODEL_SETTING

    if not record:
        return
    col = session.get(Collection, collection.id)
    settings = dict(col.settings or {}) if col is not None else {}
    if col is None or settings.get(MODEL_SETTING, {}).get("name") == record.get("name"):
        return
    settings[MODEL_SETTING] = record
    col.settings = settings  # reassigned: JSON columns do not track in-place changes
    collection.settings = settings


def _worker_threads() -> int:
    """ORT threads per worker: the cores divided among ingestion workers (env ``VISIONLAKE_WORKERS``)."""
    from visionlake.analysers.base import WORKERS_ENV

    workers = int(os.environ.get(WORKERS_ENV, "1") or 1)  # set in pool workers (ingest/analyse share_cores)
    return max(1, (os.cpu_count() or 1) // max(1, workers))
