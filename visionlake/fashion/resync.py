"""The fashion space's part of :mod:`visionlake.resync`: the catalog's fashion embeddings are the truth.

Ingestion stores every image embedding in ``fashion_embeddings`` (catalog) and in the collection's
``fashion`` index (derived); these functions list, measure and resync that derived copy. They are
reached by the lake and ``visionlake check`` through :data:`visionlake.areas.AREAS`, so core code never
imports this area.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select


def fashion_catalog_ids(lake: Any, collection_id: int) -> set[int]:
    """Image ids of a collection that have a fashion embedding in the catalog."""
    from visionlake.catalog.models import Image
    from visionlake.fashion.models import FashionEmbedding

    with lake.session() as s:
        return set(s.scalars(select(FashionEmbedding.image_id).join(Image, Image.id == FashionEmbedding.image_id)
                             .where(Image.collection_id == collection_id)).all())


def fashion_catalog_dim(lake: Any, collection_id: int) -> int | None:
    """Dimension of the collection's stored fashion embeddings (None when there are none)."""
    from visionlake.catalog.models import Image
    from visionlake.fashion.models import FashionEmbedding

    with lake.session() as s:
        return s.scalar(select(FashionEmbedding.dim).join(Image, Image.id == FashionEmbedding.image_id)
                        .where(Image.collection_id == collection_id).limit(1))


def fashion_index_dim(lake: Any, collection_id: int) -> int | None:
    """Dimension of the collection's fashion *index* as the catalog's vectors give it (None: none stored):
    the stored width, or the pooled part's for a ``rows`` backbone (:mod:`visionlake.fashion.index_vectors`)."""
    from visionlake.catalog.models import Collection
    from visionlake.fashion.index_vectors import index_dim
    from visionlake.fashion.tagger import MODEL_SETTING

    stored = fashion_catalog_dim(lake, collection_id)
    if stored is None:
        return None
    with lake.session() as s:
        col = s.get(Collection, collection_id)
        record = ((col.settings or {}) if col is not None else {}).get(MODEL_SETTING)
    return index_dim(stored, record)


def fashion_meta(meta: dict[str, Any] | None) -> dict[str, Any]:
    """Index metadata of a fashion vector: the image's scalar metadata (what ``--where`` filters on)."""
    return {k: v for k, v in (meta or {}).items() if isinstance(v, str | int | float | bool)}


def sync_fashion(lake: Any, collection: str, save: bool = True, backfill: bool = True) -> dict[str, int]:
    """Make the fashion index hold exactly the catalog's fashion embeddings.

    ``backfill``: vectors found only in the index for images that still exist (lakes ingested before
    embeddings were stored in the catalog) are copied into the catalog instead of being dropped.
    """
    from visionlake.catalog.models import Image
    from visionlake.fashion.index_vectors import index_rows
    from visionlake.fashion.models import FashionEmbedding
    from visionlake.fashion.tagger import MODEL_SETTING

    col = lake.collection(collection)
    record = (col.settings or {}).get(MODEL_SETTING)
    report = {"added": 0, "removed": 0, "backfilled": 0, "count": 0}
    stored = fashion_catalog_dim(lake, col.id)
    dim = fashion_index_dim(lake, col.id)
    if dim is None:
        header = lake.index_header(collection, "fashion")
        if header is None:
            return report
        dim = int(header["dim"])
    try:
        index = lake.index(collection, "fashion", dim, "cosine")
    except ValueError:  # a Milvus collection of another width refuses to open with this one
        header = lake.index_header(collection, "fashion")  # opens it with its own width
        if header is None:
            raise
        index = lake.index(collection, "fashion", int(header["dim"]), "cosine")
    if index.dim != dim:  # e.g. built with full rows vectors before the index held their pooled part
        index = _fresh_index(lake, collection, index, dim)
        report["rebuilt"] = 1
    catalog = fashion_catalog_ids(lake, col.id)
    in_index = set(index.ids().tolist())
    extra = sorted(in_index - catalog)
    missing = sorted(catalog - in_index)
    # index-only vectors can be copied back only when the index holds vectors as the catalog stores them
    if extra and backfill and stored in (None, dim):
        with lake.session() as s:
            alive = dict(s.execute(select(Image.id, Image.meta).where(Image.collection_id == col.id,
                                                                      Image.id.in_(extra))).all())
            keep = [i for i in extra if i in alive]
            if keep:
                vecs = index.reconstruct(keep)
                for i, v in zip(keep, vecs, strict=True):
                    s.add(FashionEmbedding(image_id=i, dim=int(v.shape[0]), model="",
                                           vector=np.asarray(v, dtype=np.float32).tobytes()))
        report["backfilled"] = len(keep)
        extra = [i for i in extra if i not in alive]
    if extra:
        report["removed"] = index.remove(extra)
    step = 5000
    for start in range(0, len(missing), step):
        chunk = missing[start : start + step]
        with lake.session() as s:
            rows = s.execute(select(FashionEmbedding.image_id, FashionEmbedding.vector, Image.meta)
                             .join(Image, Image.id == FashionEmbedding.image_id)
                             .where(FashionEmbedding.image_id.in_(chunk))).all()
        ids = [r[0] for r in rows]
        vecs = index_rows([np.frombuffer(r[1], dtype=np.float32) for r in rows], record)
        index.add(ids, vecs, [fashion_meta(r[2]) for r in rows])
        report["added"] += len(ids)
    if save and (extra or missing or report["backfilled"] or report.get("rebuilt")):
        index.save()
    report["count"] = index.count()
    return report


def _fresh_index(lake: Any, collection: str, old: Any, dim: int) -> Any:
    """An empty ``dim``-d index replacing ``old`` (another width) in the lake's cache; the caller fills
    it from the catalog, and its next save replaces the old FAISS files as one unit (a Milvus collection
    is dropped and created again)."""
    import logging

    from visionlake.index import open_index
    from visionlake.index.faiss_index import FaissIndex

    logging.getLogger(__name__).warning(
        "the fashion index of %r holds %s-d vectors, the catalog's give %s-d: rebuilding it from the catalog",
        collection, old.dim, dim)
    engine = lake.settings.get("index", "faiss")
    if engine == "faiss":
        old.close()
        ix: Any = FaissIndex(None, dim=dim, metric="cosine")
        ix.path = lake.collection_dir(collection) / "index" / "fashion"
    else:
        old.drop()
        ix = open_index(engine, dim=dim, metric="cosine", collection=f"{collection}__fashion")
    lake._indexes[(collection, "fashion")] = ix
    return ix
