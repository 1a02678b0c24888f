"""What the fashion index holds for a stored embedding: the one mapping every index path uses.

Why: a ``rows`` backbone embedding (8,704-d, :mod:`visionlake.fashion.backbone`) makes better article
heads, but search by photo ranked as well with its pooled part alone (precision@10 on the validation
ids 12000-13999: 0.260 pooled vs 0.262 rows, ``docs/benchmarks/fashion-backbone-layout-cv.json``),
while the full vector costs 6.8x the index memory and scan time (~10 GB of float32 for 300k photos).
So the catalog keeps the full vector (heads train on it) and the index holds the pooled part -- the
first 1280 dims re-normalised to unit length, which is the ``pooled``-layout vector of the same photo.
Every other model or layout (FashionSigLIP, ``pooled`` collections) is indexed as stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: pooled feature width of EfficientNet-Lite0 (records written before ``pooled_dim`` was recorded)
POOLED_DIM = 1280


def is_rows(record: dict[str, Any] | None) -> bool:
    """Whether a collection's model record (``settings["fashion_model"]``) is a ``rows``-layout backbone."""
    from visionlake.fashion.backbone import BACKBONE_NAME, LAYOUT_ROWS

    return bool(record) and record.get("name") == BACKBONE_NAME and record.get("layout") == LAYOUT_ROWS


def index_dim(stored_dim: int, record: dict[str, Any] | None) -> int:
    """Dimension of the index of a collection whose stored embeddings have ``stored_dim`` dims."""
    if is_rows(record) and stored_dim == int(record.get("dim") or stored_dim):  # type: ignore[union-attr]
        return int(record.get("pooled_dim") or POOLED_DIM)  # type: ignore[union-attr]
    return int(stored_dim)


def index_vectors(vectors: np.ndarray, record: dict[str, Any] | None) -> np.ndarray:
    """Stored embeddings (or queries embedded by the collection's model) -> index vectors, (n, d) float32.

    Rows-layout vectors become their first ``pooled_dim`` dims scaled back to unit length; anything else
    (other models, vectors already of the index's width, a wrong width the caller reports) is returned
    as it is.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    want = index_dim(int(x.shape[1]), record)
    if want == x.shape[1]:
        return x
    part = x[:, :want]
    norm = np.linalg.norm(part, axis=1, keepdims=True)
    norm[norm == 0] = 1
    return np.ascontiguousarray(part / norm, dtype=np.float32)


def collection_record(lake: Any, collection: str) -> dict[str, Any] | None:
    """The model record a fashion collection was embedded with (None: nothing recorded yet)."""
    from visionlake.fashion.tagger import MODEL_SETTING

    return (lake.collection(collection).settings or {}).get(MODEL_SETTING) or None
