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


def is_backbone(record: dict[str, Any] | None) -> bool:
    """Whether a collection's model record names the EfficientNet-Lite0 backbone (any layout)."""
    from visionlake.fashion.backbone import BACKBONE_NAME

    return bool(record) and record.get("name") == BACKBONE_NAME  # type: ignore[union-attr]


def index_dim(stored_dim: int, record: dict[str, Any] | None) -> int:
    """Dimension of the index of a collection whose stored embeddings have ``stored_dim`` dims.

    A backbone collection's index holds pooled vectors whatever the stored layout: a ``pooled`` vector is
    its own pooled part and a ``rows`` vector starts with it. So a collection half-way through
    ``fashion upgrade`` (some vectors still pooled, some rows already) keeps one index width.
    """
    if is_backbone(record):
        pooled = int(record.get("pooled_dim") or POOLED_DIM)  # type: ignore[union-attr]
        if stored_dim >= pooled:
            return pooled
    return int(stored_dim)


def index_vectors(vectors: np.ndarray, record: dict[str, Any] | None) -> np.ndarray:
    """Stored embeddings (or queries embedded by the collection's model) -> index vectors, (n, d) float32.

    Rows-layout vectors become their first ``pooled_dim`` dims scaled back to unit length; anything else
    (other models, vectors already of the index's width, a wrong width the caller reports) is returned
    as it is. All rows of ``vectors`` have one width: :func:`index_rows` maps stored vectors of mixed
    widths.
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


def index_rows(stored: list[np.ndarray], record: dict[str, Any] | None) -> np.ndarray:
    """Index vectors of stored vectors that may differ in width (a collection mid-``fashion upgrade``)."""
    if not stored:
        return np.zeros((0, 0), np.float32)
    widths = {int(v.shape[0]) for v in stored}
    if len(widths) == 1:
        return index_vectors(np.vstack(stored), record)
    return np.vstack([index_vectors(v, record) for v in stored])


def collection_record(lake: Any, collection: str) -> dict[str, Any] | None:
    """The model record a fashion collection was embedded with (None: nothing recorded yet)."""
    from visionlake.fashion.tagger import MODEL_SETTING

    return (lake.collection(collection).settings or {}).get(MODEL_SETTING) or None
