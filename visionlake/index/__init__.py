"""Vector indexes behind one interface; :func:`open_index` picks the engine from a URI."""

from __future__ import annotations

import os
from pathlib import Path

from visionlake.crypto import LakeCipher
from visionlake.index.base import Hit, Metric, VectorIndex, Where
from visionlake.index.faiss_index import FaissIndex


def open_index(
    location: str | os.PathLike[str],
    dim: int,
    metric: Metric = "cosine",
    kind: str = "auto",
    cipher: LakeCipher | None = None,
    collection: str = "default",
) -> VectorIndex:
    """Open (or create) an index.

    ``location`` is a folder path for FAISS, ``milvus://HOST:PORT`` for a Milvus server, or
    ``milvus-lite:/path/file.db`` for an embedded Milvus Lite file. ``collection`` names the
    Milvus collection (FAISS uses one folder per index).
    """
    loc = str(location)
    if loc.startswith(("milvus://", "milvus-lite:", "http://", "https://")) or loc.endswith(".db"):
        from visionlake.index.milvus_index import MilvusIndex

        return MilvusIndex(loc, dim=dim, metric=metric, collection=collection, cipher=cipher)
    return FaissIndex(Path(loc), dim=dim, metric=metric, kind=kind, cipher=cipher)


__all__ = ["FaissIndex", "Hit", "Metric", "VectorIndex", "Where", "open_index"]
