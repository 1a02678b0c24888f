"""FAISS backend: the embedded default.

Index types, chosen from the gallery size unless forced:

* ``flat``: exact search (``IndexIDMap2`` over ``IndexFlatIP``/``IndexFlatL2``), for small galleries;
* ``ivf``: IVF with full vectors (``IVF{nlist},Flat``), exact distances inside the probed lists;
* ``ivfsq8``: IVF with 8-bit scalar-quantised vectors, 4x smaller, for tens of millions on one box.

All three physically remove ids (``remove_ids``), which HNSW and ``IndexRefine`` cannot do (see
``../shared/notes/vector-engines.md``); IVF indexes keep a hash-table direct map so that removal and
reconstruction stay O(1) per id. Metadata filters become an id selector; narrow filters on IVF switch
to an exact scan over the selected vectors so that they never return too few hits.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from visionlake.crypto import LakeCipher
from visionlake.index.base import Hit, Metric, VectorIndex, Where, as_ids, as_vectors, normalize

#: Below this many vectors the exact index is both fast enough and the most accurate.
FLAT_MAX = 50_000
#: Up to this many vectors IVF keeps full float vectors; above it, 8-bit codes.
IVF_FLAT_MAX = 3_000_000
#: A filtered query whose selection is at most this large is answered by an exact scan.
EXACT_FILTER_MAX = 20_000


def choose_kind(n: int) -> str:
    """Index type for a gallery of ``n`` vectors (the automatic policy)."""
    if n <= FLAT_MAX:
        return "flat"
    if n <= IVF_FLAT_MAX:
        return "ivf"
    return "ivfsq8"


def choose_nlist(n: int) -> int:
    """Number of IVF lists: about 4 * sqrt(n), a power of two between 256 and 65536."""
    target = 4 * math.sqrt(max(n, 1))
    return int(min(65536, max(256, 2 ** round(math.log2(target)))))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: enough for recall@1 >= 0.99 on face-like clustered data."""
    return int(min(nlist, max(32, nlist // 48)))


class FaissIndex(VectorIndex):
    """A FAISS index stored in a folder: ``index.faiss`` (optionally encrypted) + ``index.json``."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        dim: int,
        metric: Metric = "cosine",
        kind: str = "auto",
        cipher: LakeCipher | None = None,
        nprobe: int | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.dim = int(dim)
        self.metric = metric
        self.requested_kind = kind
        self.cipher = cipher
        self.kind = "flat"
        self.nlist = 0
        self.nprobe = nprobe or 0
        self._meta: dict[int, dict[str, Any]] = {}
        self._inverted: dict[str, dict[str, set[int]]] = {}
        self._index = self._new_flat()
        if self.path is not None and (self.path / "index.json").exists():
            self._load()

    # ------------------------------------------------------------------ construction
    @property
    def _faiss_metric(self) -> int:
        return faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2

    def _new_flat(self) -> faiss.Index:
        base = faiss.IndexFlatIP(self.dim) if self.metric == "cosine" else faiss.IndexFlatL2(self.dim)
        return faiss.IndexIDMap2(base)

    def _new_ivf(self, kind: str, nlist: int) -> faiss.Index:
        spec = f"IVF{nlist},{'Flat' if kind == 'ivf' else 'SQ8'}"
        index = faiss.index_factory(self.dim, spec, self._faiss_metric)
        return index

    def _prep(self, vectors: np.ndarray) -> np.ndarray:
        arr = as_vectors(vectors, self.dim)
        return normalize(arr) if self.metric == "cosine" else arr

    # ------------------------------------------------------------------ interface
    def add(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        ids_arr = as_ids(ids)
        vecs = self._prep(vectors)
        if len(ids_arr) != len(vecs):
            raise ValueError(f"{len(ids_arr)} ids for {len(vecs)} vectors")
        if len(ids_arr) == 0:
            return
        if self._index.ntotal:
            self._remove_from_index(ids_arr)
        self._index.add_with_ids(vecs, ids_arr)
        if metadata is not None:
            for i, m in zip(ids_arr.tolist(), metadata, strict=True):
                self._set_meta(i, dict(m))
        if self.requested_kind == "auto" and choose_kind(self._index.ntotal) != self.kind:
            self.rebuild(choose_kind(self._index.ntotal))

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        ids_arr = as_ids(ids)
        removed = self._remove_from_index(ids_arr)
        for i in ids_arr.tolist():
            self._drop_meta(i)
        return removed

    def search(self, queries: np.ndarray, k: int = 10, where: Where | None = None) -> list[list[Hit]]:
        q = self._prep(queries)
        n = self._index.ntotal
        if n == 0 or k <= 0:
            return [[] for _ in range(len(q))]
        k_eff = min(k, n)
        if where:
            allowed = self._allowed(where)
            if not allowed:
                return [[] for _ in range(len(q))]
            allowed_ids = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
            if self.kind != "flat" and len(allowed_ids) <= EXACT_FILTER_MAX:
                return self._exact_subset(q, allowed_ids, min(k, len(allowed_ids)))
            sel = faiss.IDSelectorBatch(allowed_ids)
            if self.kind == "flat":
                params = faiss.SearchParameters(sel=sel)
            else:
                widen = max(1, math.ceil(n / len(allowed_ids)))
                params = faiss.SearchParametersIVF(sel=sel, nprobe=min(self.nlist, self.nprobe * widen))
            dist, lab = self._index.search(q, min(k_eff, len(allowed_ids)), params=params)
        else:
            if self.kind != "flat":
                faiss.extract_index_ivf(self._index).nprobe = self.nprobe
            dist, lab = self._index.search(q, k_eff)
        return [self._hits(d, l) for d, l in zip(dist, lab, strict=True)]

    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        if self.kind == "flat":
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(self._index)
        invlists = ivf.invlists
        out = []
        for list_no in range(ivf.nlist):
            size = invlists.list_size(list_no)
            if size:
                ptr = invlists.get_ids(list_no)
                out.append(faiss.rev_swig_ptr(ptr, size).copy())
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored vectors for ``ids`` (approximate for ``ivfsq8``), e.g. for re-ranking and rebuilds."""
        ids_arr = as_ids(ids)
        if len(ids_arr) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "flat":
            return np.vstack([self._index.reconstruct(int(i)) for i in ids_arr]).astype(np.float32)
        return self._index.reconstruct_batch(ids_arr).astype(np.float32)

    def metadata(self, id_: int) -> dict[str, Any] | None:
        """Metadata stored with ``id_`` (None when absent)."""
        return self._meta.get(int(id_))

    def rebuild(self, kind: str | None = None, nlist: int | None = None, train_sample: int = 200_000) -> None:
        """Re-create the index as ``kind`` from the stored vectors (used when the gallery outgrows a type)."""
        kind = kind or choose_kind(self.count())
        ids_arr = self.ids()
        vecs = self.reconstruct(ids_arr)
        self._build(kind, ids_arr, vecs, nlist=nlist, train_sample=train_sample)

    def build(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        kind: str | None = None,
        nlist: int | None = None,
        train_sample: int = 200_000,
    ) -> None:
        """Bulk-load an empty index in one go (faster than many ``add`` calls; picks the type once)."""
        vecs = self._prep(vectors)
        kind = kind or (choose_kind(len(vecs)) if self.requested_kind == "auto" else self.requested_kind)
        self._build(kind, as_ids(ids), vecs, nlist=nlist, train_sample=train_sample)

    def _build(
        self, kind: str, ids_arr: np.ndarray, vecs: np.ndarray, nlist: int | None, train_sample: int
    ) -> None:
        if kind == "flat":
            index = self._new_flat()
            self.nlist = 0
        else:
            self.nlist = nlist or choose_nlist(len(vecs))
            index = self._new_ivf(kind, self.nlist)
            rng = np.random.default_rng(0)
            sample_n = min(len(vecs), max(train_sample, 40 * self.nlist))
            sample = vecs[rng.choice(len(vecs), sample_n, replace=False)] if sample_n < len(vecs) else vecs
            index.train(sample)
            faiss.extract_index_ivf(index).set_direct_map_type(faiss.DirectMap.Hashtable)
            self.nprobe = self.nprobe or default_nprobe(self.nlist)
        step = 200_000
        for start in range(0, len(vecs), step):
            index.add_with_ids(vecs[start : start + step], ids_arr[start : start + step])
        self._index = index
        self.kind = kind

    def save(self) -> None:
        if self.path is None:
            raise ValueError("this index has no path; pass one to save it")
        self.path.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index).tobytes()
        encrypted = self.cipher is not None
        if encrypted:
            data = self.cipher.encrypt(data, associated=b"faiss-index")
        _atomic_write(self.path / "index.faiss", data)
        header = {
            "engine": "faiss",
            "kind": self.kind,
            "requested_kind": self.requested_kind,
            "dim": self.dim,
            "metric": self.metric,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "encrypted": encrypted,
            "count": self.count(),
            "metadata": {str(k): v for k, v in self._meta.items()},
        }
        _atomic_write(self.path / "index.json", json.dumps(header).encode())

    def describe(self) -> dict[str, Any]:
        size = 0
        if self.path is not None and (self.path / "index.faiss").exists():
            size = (self.path / "index.faiss").stat().st_size
        return {
            "engine": "faiss",
            "kind": self.kind,
            "dim": self.dim,
            "metric": self.metric,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "count": self.count(),
            "bytes_on_disk": size,
            "encrypted": self.cipher is not None,
        }

    # ------------------------------------------------------------------ internals
    def _load(self) -> None:
        assert self.path is not None
        header = json.loads((self.path / "index.json").read_text())
        data = (self.path / "index.faiss").read_bytes()
        if header.get("encrypted"):
            if self.cipher is None:
                raise ValueError(f"index {self.path} is encrypted and no key was given")
            data = self.cipher.decrypt(data, associated=b"faiss-index")
        self._index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        self.kind = header["kind"]
        self.dim = header["dim"]
        self.metric = header["metric"]
        self.nlist = header.get("nlist", 0)
        self.nprobe = self.nprobe or header.get("nprobe", 0)
        if self.kind != "flat":
            faiss.extract_index_ivf(self._index).set_direct_map_type(faiss.DirectMap.Hashtable)
        self._meta = {}
        self._inverted = {}
        for k, v in header.get("metadata", {}).items():
            self._set_meta(int(k), v)

    def _remove_from_index(self, ids_arr: np.ndarray) -> int:
        if len(ids_arr) == 0 or self._index.ntotal == 0:
            return 0
        if self.kind == "flat":
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids_arr)))
        # the hash-table direct map only accepts an array selector (O(1) per id)
        return int(self._index.remove_ids(faiss.IDSelectorArray(len(ids_arr), faiss.swig_ptr(ids_arr))))

    def _hits(self, dist: np.ndarray, labels: np.ndarray) -> list[Hit]:
        out = []
        for d, i in zip(dist.tolist(), labels.tolist(), strict=True):
            if i < 0:
                continue
            score = d if self.metric == "cosine" else math.sqrt(max(d, 0.0))
            out.append(Hit(int(i), float(score)))
        return out

    def _exact_subset(self, q: np.ndarray, allowed_ids: np.ndarray, k: int) -> list[list[Hit]]:
        vecs = self.reconstruct(allowed_ids)
        if self.metric == "cosine":
            sims = q @ vecs.T
            order = np.argsort(-sims, axis=1)[:, :k]
            return [
                [Hit(int(allowed_ids[j]), float(sims[r, j])) for j in order[r]] for r in range(len(q))
            ]
        d = ((q[:, None, :] - vecs[None, :, :]) ** 2).sum(-1)
        order = np.argsort(d, axis=1)[:, :k]
        return [[Hit(int(allowed_ids[j]), float(math.sqrt(d[r, j]))) for j in order[r]] for r in range(len(q))]

    def _set_meta(self, id_: int, meta: dict[str, Any]) -> None:
        self._drop_meta(id_)
        self._meta[id_] = meta
        for key, value in meta.items():
            self._inverted.setdefault(key, {}).setdefault(str(value), set()).add(id_)

    def _drop_meta(self, id_: int) -> None:
        old = self._meta.pop(id_, None)
        if not old:
            return
        for key, value in old.items():
            bucket = self._inverted.get(key, {}).get(str(value))
            if bucket is not None:
                bucket.discard(id_)

    def _allowed(self, where: Where) -> set[int]:
        result: set[int] | None = None
        for key, want in where.items():
            values = want if isinstance(want, list | tuple | set | frozenset) else [want]
            ids: set[int] = set()
            for v in values:
                ids |= self._inverted.get(key, {}).get(str(v), set())
            result = ids if result is None else result & ids
            if not result:
                return set()
        return result or set()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, then rename: readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
