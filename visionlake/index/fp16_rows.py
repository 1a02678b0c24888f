"""The ``pqfs`` re-rank store: every face's fp16 vector as one row of a contiguous matrix.

Why not a FAISS index read by id: the ``pqfs`` query re-scores ``rerank`` (512) candidates, and
``IndexIVFScalarQuantizer.reconstruct_batch`` looks each one up in a hash-table direct map and
decodes it alone (one decoder per vector): 1.3 ms per query at 200k faces on this box, more at 1M
where the hash table no longer fits in cache. Here the fast-scan codes are labelled with the
*row* of each face, so a candidate is already the row to read: one NumPy gather of the candidates'
codes and one SIMD decode by FAISS's own fp16 quantizer (bit-identical to what the IVF store
returned: the codes are encoded by the same quantizer).

Removal is physical: a removed row is overwritten by the last row (swap-with-last) and the matrix
shrinks, so no removed face's bytes stay in the store; the caller moves the same faces' codes in
the scan with :meth:`Fp16Rows.remove_rows`'s answer. Persisted as one ``.npy``-pair file inside
the index folder, listed in the folder's MANIFEST like the other files (``FaissIndex.save``).
"""

from __future__ import annotations

import io
from typing import BinaryIO

import faiss
import numpy as np

#: File name inside the index folder.
FILE = "rerank.fp16.npy"


class Fp16Rows:
    """fp16 vectors (as FAISS ``QT_fp16`` codes) and the catalog id of each row."""

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self._sq = faiss.ScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16)
        self._codes = np.zeros((0, self._sq.code_size), dtype=np.uint8)
        self._ids = np.zeros(0, dtype=np.int64)
        self.ntotal = 0
        self._sorter: np.ndarray | None = None  # argsort of the live ids, rebuilt after a change

    # ------------------------------------------------------------------ growth
    def reserve(self, capacity: int) -> None:
        """Room for ``capacity`` rows in one allocation: a bulk load that knows its size never holds
        the old and the grown matrix at once (1M faces: +0.7 GB peak otherwise)."""
        if capacity <= len(self._ids):
            return
        codes = np.zeros((capacity, self._sq.code_size), dtype=np.uint8)
        codes[: self.ntotal] = self._codes[: self.ntotal]
        ids_arr = np.zeros(capacity, dtype=np.int64)
        ids_arr[: self.ntotal] = self._ids[: self.ntotal]
        self._codes, self._ids = codes, ids_arr

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Store ``vectors`` (float32, n x dim) under catalog ``ids``; returns their rows."""
        n = len(ids)
        need = self.ntotal + n
        if need > len(self._ids):  # amortised growth: a face at a time stays O(1)
            self.reserve(max(need, int(len(self._ids) * 1.5) + 1024))
        rows = np.arange(self.ntotal, need, dtype=np.int64)
        self._codes[self.ntotal : need] = self._sq.compute_codes(np.ascontiguousarray(vectors, dtype=np.float32))
        self._ids[self.ntotal : need] = ids
        self.ntotal = need
        self._sorter = None
        return rows

    def remove_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Remove ``rows`` (swap-with-last); returns (old rows, new rows) of the faces that moved.

        The freed tail is zeroed, so a removed face's bytes leave the matrix, not just its count.
        """
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if len(rows) == 0:
            return rows, rows
        new_n = self.ntotal - len(rows)
        holes = rows[rows < new_n]  # removed rows inside the part that stays
        tail = np.arange(new_n, self.ntotal, dtype=np.int64)
        movers = tail[~np.isin(tail, rows)]  # live rows past the end, one per hole
        self._codes[holes] = self._codes[movers]
        self._ids[holes] = self._ids[movers]
        self._codes[new_n : self.ntotal] = 0
        self._ids[new_n : self.ntotal] = -1
        self.ntotal = new_n
        self._sorter = None
        return movers, holes

    # ------------------------------------------------------------------ reads
    def ids(self) -> np.ndarray:
        """Catalog ids of every row, in row order (a copy)."""
        return self._ids[: self.ntotal].copy()

    def ids_of(self, rows: np.ndarray) -> np.ndarray:
        return self._ids[rows]

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where absent (binary search in a sorted view, rebuilt after changes)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        live = self._ids[: self.ntotal]
        if self._sorter is None:
            self._sorter = np.argsort(live, kind="stable")
        if self.ntotal == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        sorted_ids = live[self._sorter]
        pos = np.minimum(np.searchsorted(sorted_ids, ids), self.ntotal - 1)
        found = sorted_ids[pos] == ids
        return np.where(found, self._sorter[pos], -1).astype(np.int64)

    def decode(self, rows: np.ndarray) -> np.ndarray:
        """float32 vectors of ``rows`` (one gather, one SIMD decode)."""
        if len(rows) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._sq.decode(self._codes[rows])

    @property
    def code_size(self) -> int:
        return int(self._sq.code_size)

    # ------------------------------------------------------------------ persistence
    def write(self, fh: BinaryIO) -> None:
        """Two ``.npy`` arrays back to back: ids, then codes (live rows only)."""
        np.save(fh, self._ids[: self.ntotal], allow_pickle=False)
        np.save(fh, self._codes[: self.ntotal], allow_pickle=False)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        self.write(buf)
        return buf.getvalue()

    @classmethod
    def read(cls, fh: BinaryIO, dim: int) -> Fp16Rows:
        """Inverse of :meth:`write`; raises ValueError when the shapes do not fit ``dim``."""
        store = cls(dim)
        ids = np.load(fh, allow_pickle=False)
        codes = np.load(fh, allow_pickle=False)
        if ids.ndim != 1 or codes.shape != (len(ids), store._sq.code_size) or codes.dtype != np.uint8:
            raise ValueError(f"re-rank store shapes {ids.shape} / {codes.shape} do not fit dimension {dim}")
        store._ids = np.ascontiguousarray(ids, dtype=np.int64)
        store._codes = np.ascontiguousarray(codes)
        store.ntotal = len(ids)
        return store

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, dim: int) -> Fp16Rows:
        return cls.read(io.BytesIO(data), dim)
