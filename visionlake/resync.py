"""Every vector index is derived from the catalog and resynced from it the same way.

The catalog (SQL) is the single source of truth; a vector index (FAISS folder or Milvus collection)
is a copy that a crash, a cancelled service job or two concurrent ingests can leave behind or ahead.
Each embedding space registers here how to list its catalog ids and fetch their vectors:

* ``faces``: ``faces.embedding`` (encrypted templates), metadata ``person_id`` (see
  :mod:`visionlake.faces.sync`, which this module calls);
* ``fashion``: ``fashion_embeddings.vector``, metadata the image's scalar metadata.

:func:`sync_space` makes an index hold exactly the catalog's ids: missing vectors are re-added from
the catalog, extras removed. The lake runs it whenever it opens an index (so every command starts
from an index that agrees with the catalog), ingestion runs it at the end of a run, and
``visionlake check`` / ``repair`` use :func:`compare` and :func:`rebuild`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import select

log = logging.getLogger(__name__)

#: Spaces whose index can be rebuilt from the catalog alone.
DERIVED_SPACES = ("faces", "fashion")


# ---------------------------------------------------------------------------------------- fashion
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


def fashion_meta(meta: dict[str, Any] | None) -> dict[str, Any]:
    """Index metadata of a fashion vector: the image's scalar metadata (what ``--where`` filters on)."""
    return {k: v for k, v in (meta or {}).items() if isinstance(v, str | int | float | bool)}


def sync_fashion(lake: Any, collection: str, save: bool = True, backfill: bool = True) -> dict[str, int]:
    """Make the fashion index hold exactly the catalog's fashion embeddings.

    ``backfill``: vectors found only in the index for images that still exist (lakes ingested before
    embeddings were stored in the catalog) are copied into the catalog instead of being dropped.
    """
    from visionlake.catalog.models import Image
    from visionlake.fashion.models import FashionEmbedding

    col = lake.collection(collection)
    report = {"added": 0, "removed": 0, "backfilled": 0, "count": 0}
    dim = fashion_catalog_dim(lake, col.id)
    if dim is None:
        header = lake.index_header(collection, "fashion")
        if header is None:
            return report
        dim = int(header["dim"])
    index = lake.index(collection, "fashion", dim, "cosine")
    catalog = fashion_catalog_ids(lake, col.id)
    in_index = set(index.ids().tolist())
    extra = sorted(in_index - catalog)
    missing = sorted(catalog - in_index)
    if extra and backfill:
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
        vecs = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        index.add(ids, vecs, [fashion_meta(r[2]) for r in rows])
        report["added"] += len(ids)
    if save and (extra or missing or report["backfilled"]):
        index.save()
    report["count"] = index.count()
    return report


# ---------------------------------------------------------------------------------------- faces
def faces_catalog_ids(lake: Any, collection_id: int) -> set[int]:
    """Face ids of a collection that carry a template."""
    from visionlake.faces.models import Face

    with lake.session() as s:
        return set(s.scalars(select(Face.id).where(Face.collection_id == collection_id,
                                                   Face.embedding.is_not(None))).all())


def sync_faces(lake: Any, collection: str, save: bool = True, backfill: bool = True) -> dict[str, int]:
    """Faces keep their own resync (it also relabels person ids): :func:`visionlake.faces.sync.sync_index`."""
    from visionlake.faces.sync import sync_index

    return sync_index(lake, collection, save=save)


SYNCERS: dict[str, Callable[..., dict[str, int]]] = {"faces": sync_faces, "fashion": sync_fashion}
CATALOG_IDS: dict[str, Callable[[Any, int], set[int]]] = {"faces": faces_catalog_ids,
                                                           "fashion": fashion_catalog_ids}


def sync_space(lake: Any, collection: str, space: str, save: bool = True, backfill: bool = True
               ) -> dict[str, int]:
    """Resync one space of a collection from the catalog (no-op for spaces not derived from it)."""
    fn = SYNCERS.get(space)
    if fn is None:
        return {}
    return fn(lake, collection, save=save, backfill=backfill)


def sync_collection(lake: Any, collection: str, save: bool = True) -> dict[str, dict[str, int]]:
    """Resync every derived space of a collection; returns what each one repaired."""
    return {space: sync_space(lake, collection, space, save=save) for space in DERIVED_SPACES}


def catalog_dim(lake: Any, collection: str, space: str) -> int | None:
    """Dimension of a derived space as the catalog stores it (None when it holds no vectors)."""
    col = lake.collection(collection)
    if space == "fashion":
        return fashion_catalog_dim(lake, col.id)
    if space == "faces":
        from visionlake.faces.sync import collection_dim

        return collection_dim(lake, col.id)
    return None


def compare(lake: Any, collection: str, space: str, index: Any) -> dict[str, list[int]]:
    """Ids the catalog has and the index lacks (``missing``) and the reverse (``extra``)."""
    col = lake.collection(collection)
    catalog = CATALOG_IDS[space](lake, col.id)
    have = set(index.ids().tolist())
    return {"missing": sorted(catalog - have), "extra": sorted(have - catalog)}
