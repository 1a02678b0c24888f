"""One interface for every vector engine (FAISS embedded, Milvus for clusters).

Callers hold catalog ids (int64) and float32 vectors; an index never invents ids. Removal must be
physical or reported as impossible: erasure of a person depends on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Metric = Literal["cosine", "l2"]
#: Metadata filter: field -> value, or field -> list of accepted values (all fields must match).
Where = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result. ``score`` is cosine similarity (higher is closer) for ``cosine`` indexes
    and Euclidean distance (lower is closer) for ``l2`` ones; hits come best first."""

    id: int
    score: float


def as_ids(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Normalise ids to a contiguous int64 array."""
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def as_vectors(vectors: Sequence[Sequence[float]] | np.ndarray, dim: int) -> np.ndarray:
    """Normalise vectors to a contiguous float32 (n, dim) array, with a clear error on a wrong shape."""
    arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {arr.shape}")
    return arr


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows so that inner product equals cosine similarity."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32, copy=False)


def matches(meta: Mapping[str, Any] | None, where: Where | None) -> bool:
    """True when ``meta`` satisfies every condition of ``where`` (equality or membership)."""
    if not where:
        return True
    if meta is None:
        return False
    for key, want in where.items():
        have = meta.get(key)
        if isinstance(want, list | tuple | set | frozenset):
            if str(have) not in {str(w) for w in want}:
                return False
        elif str(have) != str(want):
            return False
    return True


class VectorIndex(ABC):
    """Add, remove, search (top-k with a metadata filter), count, save. Keyed by catalog ids."""

    dim: int
    metric: Metric

    @abstractmethod
    def add(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Insert vectors under the given ids (an existing id is replaced)."""

    @abstractmethod
    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Physically remove ids; returns how many were present."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int = 10, where: Where | None = None) -> list[list[Hit]]:
        """Top-k hits per query row, best first, restricted to items whose metadata match ``where``."""

    @abstractmethod
    def count(self) -> int:
        """Number of vectors stored."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """All stored ids (int64), for reconciliation with the catalog and erasure checks."""

    @abstractmethod
    def save(self) -> None:
        """Persist to the index's location atomically (a crash leaves the old or the new file)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Engine, index type, parameters, counts and bytes, for ``visionlake info``."""

    def _prep(self, vectors: np.ndarray) -> np.ndarray:
        """Shape-checked float32 rows, finite, L2-normalised for cosine indexes."""
        arr = as_vectors(vectors, self.dim)
        if not np.all(np.isfinite(arr)):
            raise ValueError("vectors contain NaN or infinite values")
        return normalize(arr) if self.metric == "cosine" else arr

    def _batch(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any]] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validate one ``add`` call the same way for every engine: ids, vectors, metadata agree."""
        ids_arr = as_ids(ids)
        vecs = self._prep(vectors)
        if len(ids_arr) != len(vecs):
            raise ValueError(f"{len(ids_arr)} ids for {len(vecs)} vectors")
        if metadata is not None and len(metadata) != len(ids_arr):
            raise ValueError(f"{len(metadata)} metadata entries for {len(ids_arr)} ids")
        return ids_arr, vecs

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, memory maps)."""

    def __len__(self) -> int:
        return self.count()
