"""Every vector index is derived from the catalog and resynced from it the same way.

The catalog (SQL) is the single source of truth; a vector index (FAISS folder or Milvus collection)
is a copy that a crash, a cancelled service job or two concurrent ingests can leave behind or ahead.
Each embedding space says in :data:`visionlake.areas.AREAS` how to list its catalog ids and resync:

* ``faces``: ``faces.embedding`` (encrypted templates), metadata ``person_id`` (see
  :mod:`visionlake.faces.sync`);
* ``fashion``: ``fashion_embeddings.vector``, metadata the image's scalar metadata
  (:mod:`visionlake.fashion.resync`).

:func:`sync_space` makes an index hold exactly the catalog's ids: missing vectors are re-added from
the catalog, extras removed. The lake runs it whenever it opens an index (so every command starts
from an index that agrees with the catalog), ingestion runs it at the end of a run, and
``visionlake check`` / ``repair`` use :func:`compare` and :func:`rebuild`.
"""

from __future__ import annotations

import logging
from typing import Any

from visionlake.areas import DERIVED_SPACES, resolve

log = logging.getLogger(__name__)



def _space(space: str) -> Any:
    """The :class:`~visionlake.areas.IndexSpace` of ``space`` (None: not derived from the catalog)."""
    from visionlake.areas import index_space

    return index_space(space)


def sync_space(lake: Any, collection: str, space: str, save: bool = True, backfill: bool = True
               ) -> dict[str, int]:
    """Resync one space of a collection from the catalog (no-op for spaces not derived from it)."""
    spec = _space(space)
    if spec is None:
        return {}
    return resolve(spec.sync)(lake, collection, save=save, backfill=backfill)


def sync_collection(lake: Any, collection: str, save: bool = True) -> dict[str, dict[str, int]]:
    """Resync every derived space of a collection; returns what each one repaired."""
    return {space: sync_space(lake, collection, space, save=save) for space in DERIVED_SPACES}


def catalog_ids(lake: Any, collection_id: int, space: str) -> set[int]:
    """Ids the catalog holds vectors for in ``space`` (what the index must hold exactly)."""
    return resolve(_space(space).catalog_ids)(lake, collection_id)


def catalog_dim(lake: Any, collection: str, space: str) -> int | None:
    """Dimension of a derived space as the catalog stores it (None when it holds no vectors)."""
    spec = _space(space)
    if spec is None:
        return None
    return resolve(spec.catalog_dim)(lake, lake.collection(collection).id)


def compare(lake: Any, collection: str, space: str, index: Any) -> dict[str, list[int]]:
    """Ids the catalog has and the index lacks (``missing``) and the reverse (``extra``)."""
    catalog = catalog_ids(lake, lake.collection(collection).id, space)
    have = set(index.ids().tolist())
    return {"missing": sorted(catalog - have), "extra": sorted(have - catalog)}
