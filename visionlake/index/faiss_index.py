"""FAISS backend: the embedded default.

Index types, chosen from the gallery size unless forced:

* ``flat``: exact search (``IndexIDMap2`` over ``IndexFlatIP``/``IndexFlatL2``), for small galleries;
* ``ivf``: IVF with full vectors (``IVF{nlist},Flat``), exact distances inside the probed lists;
* ``ivfsq8``: IVF with 8-bit scalar-quantised vectors, 4x smaller (recall@1 capped near 0.95 on
  face-like data: 8-bit rounding reorders near ties);
* ``ivfsq8r``: IVF with 8-bit codes for the scan plus the same fp16 *re-rank store* as ``ivfpq``: the
  SQ8 scan proposes ``k * rerank`` candidates, their fp16 vectors give the final order (8-bit rounding
  no longer reorders near ties). Never chosen automatically: measured on 512-d ArcFace templates at
  1M faces, where its recall@1 was limited by the lists probed, not by the codes (see ``pqfs``);
* ``pqfs``: every vector scanned, as 4-bit product-quantised codes read with FAISS's SIMD "fast
  scan" (a plain ``IndexPQFastScan``, ``dim/16`` bytes per face), plus an fp16 re-rank store kept as
  rows of one matrix (:mod:`visionlake.index.fp16_rows`): code *i* and row *i* are the same face, so
  the scan's ``rerank`` candidates are already the rows to read (one gather, one SIMD decode). For
  wide templates whose mates sit at cosine 0.3-0.6 in a near-orthogonal space, IVF lists miss the
  mate (``bench identify --nprobe-sweep``: recall@1 = the share of probes whose exact top-1 is in a
  probed list, 0.93 at 6% of the lists), while a full scan of 32-byte codes costs a few milliseconds
  and misses nothing but what the codes reorder, which the re-rank repairs. Removal moves the last
  face's packed code and fp16 row into each freed position (swap-with-last) and zeroes what is left
  past the end;
* ``ivfpq``: IVF with product-quantised codes (``dim/4`` bytes) for the scan plus a *re-rank store*
  of half-precision vectors (``IVF,SQfp16`` sharing the coarse quantizer, never scanned, only read by
  id): the PQ scan proposes ``k * rerank`` candidates, the fp16 vectors re-order them. For galleries
  of ten million and more on one box (see ``docs/scale.md`` for the measurements).

All six physically remove ids (``remove_ids``, or for ``pqfs`` the swap-with-last above; the re-rank
kinds remove from the scanned codes *and* the re-rank store), which HNSW and ``IndexRefine`` cannot
do (see ``../shared/notes/vector-engines.md``); IVF indexes (the ``pqfs`` codes excepted) keep a hash-table
direct map so that removal and reconstruction stay O(1) per id. Metadata filters become an id
selector; narrow filters on IVF switch to an exact scan over the selected vectors so that they never
return too few hits. The automatic policy also looks at the dimension: see :func:`choose_kind`.

The automatic policy (:func:`choose_kind`) follows the gallery size and a recall target; the chosen
kind and its parameters are written to ``index.json``, which ``visionlake info`` prints.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from visionlake.crypto import LakeCipher
from visionlake.index.base import Hit, Metric, VectorIndex, Where, as_ids
from visionlake.index.fp16_rows import FILE as FP16_FILE
from visionlake.index.fp16_rows import Fp16Rows

#: Below this many vectors the exact index is both fast enough and the most accurate.
FLAT_MAX = 50_000
#: Up to this many vectors IVF keeps full float vectors; above it, compressed codes.
IVF_FLAT_MAX = 3_000_000
#: A filtered query whose selection is at most this large is answered by an exact scan.
EXACT_FILTER_MAX = 20_000
#: Metadata filters remembered per index (see ``FaissIndex._filter``), and the largest id set kept.
FILTER_CACHE_SIZE = 32
FILTER_CACHE_MAX_IDS = 1_000_000
#: Recall@1 the automatic policy aims for (identification: the right person first).
DEFAULT_RECALL_TARGET = 0.99
#: Candidates re-ranked per requested hit in ``ivfpq`` (k=1 re-ranks 32 candidates at least).
RERANK_FACTOR = 8
RERANK_MIN = 32
#: Up to this many vectors the coarse quantizer stays at <= 4096 lists: assigning 10M vectors to
#: 16,384 lists costs ~4e13 flops (~25 min on 2 cores), to 4,096 lists ~6 min (measured, docs/scale.md).
NLIST_CAP_SMALL = 4096
NLIST_CAP_SMALL_UNTIL = 20_000_000
#: Wide templates (ArcFace 512-d): from this many dimensions IVF partitions stop working (below).
WIDE_DIM = 256
#: Up to this many wide vectors the automatic index scans every face's fast-scan code (``pqfs``,
#: ~2 ms per million on one core); beyond, IVF is unavoidable and recall drops (``ivfpq``).
WIDE_FULL_SCAN_MAX = 4_000_000
#: Share of the lists ``ivfsq8r`` probes by default (nprobe = nlist / share). Not the automatic
#: choice: at 1M arcface-s faces its recall@1 is capped by lists, not codes (0.93 at nlist/16,
#: 0.97 at nlist/8; docs/benchmarks/identify-1m-sweep-ivf.json).
WIDE_NPROBE_SHARE = 16
#: Kinds that keep an fp16 re-rank store beside the scanned codes.
RERANK_KINDS = ("ivfpq", "ivfsq8r", "pqfs")
KINDS = ("flat", "ivf", "ivfsq8", "ivfsq8r", "ivfpq", "pqfs")
#: Candidates per requested hit the ``pqfs`` scan proposes for the fp16 re-rank: chosen by ``bench
#: identify --rerank-sweep`` on the validation half of the probes at 1M arcface-s faces.
PQFS_RERANK = 512


def choose_kind(n: int, recall_target: float = DEFAULT_RECALL_TARGET, dim: int = 128) -> str:
    """Index type for a gallery of ``n`` vectors of ``dim`` dimensions and a recall@1 target.

    Measured on face-like 128-d data (docs/scale.md): ``ivf`` reaches recall@1 0.99+ but costs
    ~530 B/vector; ``ivfsq8`` ~150 B but recall@1 ~0.95; ``ivfpq`` (PQ scan + fp16 re-rank) 0.99 at
    ~380 B and scans 4x fewer bytes per query than ``ivf``. So: exact below 50k, full vectors up to
    3M, then ``ivfpq`` unless the caller accepts recall@1 < 0.96, where ``ivfsq8`` is smallest.

    Wide templates (512-d ArcFace) defeat IVF: a probe's mate sits at cosine 0.3-0.6 in a
    near-orthogonal space and lands in a list far down the probe's ranking, so recall@1 equals the
    share of probes whose mate's list is probed (0.93 with 6% of the lists, 0.96 with 9%, at 1M
    arcface-s faces: docs/benchmarks/identify-1m-sweep-ivf.json). Scanning every face as a 32-byte
    fast-scan code and re-ranking the best candidates with fp16 vectors (``pqfs``) misses nothing the
    codes keep in the candidate pool (docs/benchmarks/identify-1m-sweep.json), up to
    :data:`WIDE_FULL_SCAN_MAX` faces.
    """
    if n <= FLAT_MAX:
        return "flat"
    if dim >= WIDE_DIM and n <= WIDE_FULL_SCAN_MAX:
        return "pqfs"
    if n <= IVF_FLAT_MAX:
        return "ivf"
    return "ivfsq8" if recall_target < 0.96 else "ivfpq"


def choose_nlist(n: int) -> int:
    """Number of IVF lists: about 4 * sqrt(n), a power of two >= 256; capped at 4096 up to 20M
    vectors (coarse assignment dominates the build on a small box), at 65536 beyond."""
    target = 4 * math.sqrt(max(n, 1))
    cap = NLIST_CAP_SMALL if n <= NLIST_CAP_SMALL_UNTIL else 65536
    return int(min(cap, max(256, 2 ** round(math.log2(target)))))


def choose_pq_m(dim: int) -> int:
    """PQ sub-quantizers for ``ivfpq``: one byte per 4 dimensions (32 bytes for 128-d templates)."""
    for m in (dim // 4, dim // 2, dim):
        if m >= 1 and dim % m == 0:
            return m
    return dim


def default_nprobe(nlist: int, kind: str = "ivf") -> int:
    """Lists probed per query.

    ``ivf`` (exact distances inside the lists, galleries up to a few million) probes 1/12 of the
    lists: on real LFW dlib templates with 1M distractors, nlist/48 gave recall@1 0.915, nlist/16
    0.989 (p50 1.9 ms), because different people's templates sit at near-equal cosine. ``ivfpq`` and
    ``ivfsq8`` are limited by code precision, not probing (docs/scale.md), and keep nlist/48.
    ``ivfsq8r`` (wide templates) probes ``nlist / WIDE_NPROBE_SHARE``, chosen on validation probes.
    """
    share = {"ivf": 12, "ivfsq8r": WIDE_NPROBE_SHARE}.get(kind, 48)
    return int(min(nlist, max(32, nlist // share)))


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run FAISS on the calling thread only (OpenMP's thread count is per calling thread).

    FAISS parallelises a search over its queries: one query keeps one thread busy while the others
    wait at the region's barrier, and on a busy box those waits dominate. Measured on the loaded
    2-core machine, one 512-d query against 100,000 fast-scan codes with a 256-face fp16 re-rank:
    p50 28 ms with the default two threads, 2 ms with one.
    """
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _ivf(index: faiss.Index) -> faiss.IndexIVF:
    return faiss.extract_index_ivf(index)


class FaissIndex(VectorIndex):
    """A FAISS index stored in a folder: ``index.faiss`` (+ ``rerank.faiss`` for ``ivfpq``/``ivfsq8r``,
    ``rerank.fp16.npy`` for ``pqfs``), optionally encrypted, ``index.json`` (kind, parameters,
    metadata) and ``MANIFEST`` (their SHA-256, written last: see :mod:`visionlake.index.manifest`)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        dim: int,
        metric: Metric = "cosine",
        kind: str = "auto",
        cipher: LakeCipher | None = None,
        nprobe: int | None = None,
        recall_target: float = DEFAULT_RECALL_TARGET,
    ) -> None:
        if kind not in ("auto", *KINDS):
            raise ValueError(f"unknown FAISS index kind {kind!r}; choose auto, {', '.join(KINDS)}")
        self.path = Path(path) if path is not None else None
        self.dim = int(dim)
        self.metric = metric
        self.requested_kind = kind
        self.recall_target = recall_target
        self.cipher = cipher
        self.kind = "flat"
        self.nlist = 0
        self.nprobe = nprobe or 0
        self.pq_m = 0
        self.rerank = 0
        # RERANK_KINDS: fp16 vectors, never scanned; pqfs: rows of a matrix (its codes are labelled by
        # row), ivfpq/ivfsq8r: an IVF store read by id
        self._rerank: faiss.Index | Fp16Rows | None = None
        self._meta: dict[int, dict[str, Any]] = {}
        self._inverted: dict[str, dict[str, set[int]]] = {}
        self._filters: dict[tuple[Any, ...], list[Any]] = {}
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
        if kind == "pqfs":
            self.pq_m = max(1, self.dim // 8)
            return faiss.index_factory(self.dim, f"IVF1,PQ{self.pq_m}x4fs", self._faiss_metric)
        if kind == "ivfpq":
            self.pq_m = choose_pq_m(self.dim)
            index = faiss.index_factory(self.dim, f"IVF{nlist},PQ{self.pq_m}", self._faiss_metric)
            # Polysemous training only reorders PQ codes for Hamming pre-filtering (polysemous_ht),
            # which search never uses; it cost ~40 s of CPU on 600 training vectors (the rest: ~2 s).
            faiss.downcast_index(_ivf(index)).do_polysemous_training = False
            return index
        spec = f"IVF{nlist},{'Flat' if kind == 'ivf' else 'SQ8'}"  # ivfsq8 and ivfsq8r scan SQ8 codes
        return faiss.index_factory(self.dim, spec, self._faiss_metric)

    def _plain_fast_scan(self, one_list: faiss.Index) -> faiss.Index:
        """``pqfs``'s scan: a plain ``IndexPQFastScan`` with the PQ trained by ``IVF1,PQ..x4fs``.

        The one-list IVF scanned the same codes with the same lookup tables (same candidates and
        distances, checked on 200k faces) but cost ~1.4x as much per query in list bookkeeping.
        A plain fast-scan index labels codes by position, which is the row of the fp16 store;
        removal moves codes itself (:meth:`_remove_rows`). Codes already in ``one_list`` (a
        ``pqfs`` index saved before) are copied over as packed, in list order.
        """
        ivf = faiss.downcast_index(_ivf(one_list))
        pq_index = faiss.IndexPQ(self.dim, ivf.pq.M, ivf.pq.nbits, self._faiss_metric)
        pq_index.pq = ivf.pq
        pq_index.is_trained = True
        plain = faiss.IndexPQFastScan(pq_index, ivf.bbs)
        n = ivf.invlists.list_size(0) if ivf.nlist == 1 else 0
        if n:
            nbytes = ((n + plain.bbs - 1) // plain.bbs) * plain.bbs * plain.M2 // 2
            plain.codes.resize(nbytes)
            src = faiss.rev_swig_ptr(ivf.invlists.get_codes(0), nbytes)
            faiss.rev_swig_ptr(plain.codes.get(), nbytes)[:] = src
            plain.ntotal = n
            plain.ntotal2 = nbytes // (plain.M2 // 2)  # ntotal rounded up to whole blocks
        return plain

    def _new_rerank_store(self, base: faiss.Index) -> faiss.Index:
        """fp16 vectors in an IVF that shares ``base``'s coarse quantizer: O(1) read and removal by id."""
        ivf = _ivf(base)
        store = faiss.IndexIVFScalarQuantizer(ivf.quantizer, self.dim, ivf.nlist,
                                              faiss.ScalarQuantizer.QT_fp16, self._faiss_metric, False)
        store.is_trained = True  # fp16 needs no training; the quantizer is already trained
        store.set_direct_map_type(faiss.DirectMap.Hashtable)
        return store

    # ------------------------------------------------------------------ interface
    def add(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        ids_arr, vecs = self._batch(ids, vectors, metadata)
        if len(ids_arr) == 0:
            return
        if self._index.ntotal:
            self._remove_from_index(ids_arr)
        self._add_vectors(ids_arr, vecs)
        if metadata is not None:
            for i, m in zip(ids_arr.tolist(), metadata, strict=True):
                self._set_meta(i, dict(m))
        if self.requested_kind == "auto":
            n = self._index.ntotal
            want = choose_kind(n, self.recall_target, self.dim)
            # grow the type with the gallery, and the IVF lists once they are 4x too few for it
            # (pqfs has one list by design: it never grows lists)
            grow = self.kind not in ("flat", "pqfs") and choose_nlist(n) >= 4 * self.nlist
            if want != self.kind or grow:
                self.rebuild(want)

    def _add_vectors(self, ids_arr: np.ndarray, vecs: np.ndarray) -> None:
        """Add prepared vectors; ``ivfpq`` assigns lists once and feeds both parts."""
        if self._rerank is None:
            self._index.add_with_ids(vecs, ids_arr)
            return
        if isinstance(self._rerank, Fp16Rows):  # pqfs: the codes carry the row, the store the id
            self._rerank.append(ids_arr, vecs)
            self._index.add(vecs)  # positions = rows: both grow by appending
            return
        ivf = _ivf(self._index)
        _, assign = ivf.quantizer.search(vecs, 1)
        assign = np.ascontiguousarray(assign.reshape(-1).astype(np.int64))
        n = len(vecs)
        ivf.add_core(n, faiss.swig_ptr(vecs), faiss.swig_ptr(ids_arr), faiss.swig_ptr(assign))
        self._rerank.add_core(n, faiss.swig_ptr(vecs), faiss.swig_ptr(ids_arr), faiss.swig_ptr(assign))

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        ids_arr = as_ids(ids)
        removed = self._remove_from_index(ids_arr)
        for i in ids_arr.tolist():
            self._drop_meta(i)
        return removed

    def search(self, queries: np.ndarray, k: int = 10, where: Where | None = None) -> list[list[Hit]]:
        if np.ndim(queries) == 1 or len(queries) == 1:
            with _one_thread():
                return self._search(queries, k, where)
        return self._search(queries, k, where)

    def _search(self, queries: np.ndarray, k: int, where: Where | None) -> list[list[Hit]]:
        q = self._prep(queries)
        n = self._index.ntotal
        if n == 0 or k <= 0:
            return [[] for _ in range(len(q))]
        k_eff = min(k, n)
        params = None
        if where:
            entry = self._filter(where)
            allowed_ids = entry[0]
            if len(allowed_ids) == 0:
                return [[] for _ in range(len(q))]
            if self.kind != "flat" and len(allowed_ids) <= EXACT_FILTER_MAX:
                return self._exact_subset(q, allowed_ids, min(k, len(allowed_ids)))
            if isinstance(self._rerank, Fp16Rows):
                # a broad filter on fast-scan codes: the selected faces' fp16 vectors are scored
                # instead, exact scores, every selected face visited
                return self._fp16_subset(q, allowed_ids, min(k_eff, len(allowed_ids)))
            if entry[1] is None:
                entry[1] = faiss.IDSelectorBatch(allowed_ids)
            sel = entry[1]
            k_eff = min(k_eff, len(allowed_ids))
            if self.kind == "flat":
                params = faiss.SearchParameters(sel=sel)
            else:
                widen = max(1, math.ceil(n / len(allowed_ids)))
                params = faiss.SearchParametersIVF(sel=sel, nprobe=min(self.nlist, self.nprobe * widen))
        elif self.kind not in ("flat", "pqfs"):  # pqfs: one plain fast-scan, nothing to probe
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        if self._rerank is not None:
            return self._search_rerank(q, k_eff, params)
        if params is not None:
            dist, lab = self._index.search(q, k_eff, params=params)
        else:
            dist, lab = self._index.search(q, k_eff)
        return [self._hits(d, row) for d, row in zip(dist, lab, strict=True)]

    def _search_rerank(self, q: np.ndarray, k: int, params: Any) -> list[list[Hit]]:
        """Code scan (PQ or SQ8) for ``k * rerank`` candidates, then exact scores on their fp16 vectors."""
        _, cand = self._index.search(q, self.rerank_pool(k), params=params)
        return self.rerank_candidates(q, cand, k)

    def scan_candidates(self, q: np.ndarray, pool: int, nprobe: int | None = None) -> np.ndarray:
        """The code scan's ``pool`` best labels per prepared query (for sweeps): catalog ids, or store
        rows for ``pqfs`` (see :meth:`candidate_ids`)."""
        if self.kind == "pqfs":
            return self._index.search(q, pool)[1]
        params = faiss.SearchParametersIVF(nprobe=nprobe or self.nprobe)
        return self._index.search(q, pool, params=params)[1]

    def rerank_pool(self, k: int) -> int:
        """Candidates the code scan proposes for ``k`` hits (re-rank kinds)."""
        return int(min(self._index.ntotal, max(RERANK_MIN, k * (self.rerank or RERANK_FACTOR))))

    def candidate_ids(self, cand: np.ndarray) -> np.ndarray:
        """Catalog ids of the code scan's labels (``pqfs`` labels its codes by store row); -1 stays."""
        if not isinstance(self._rerank, Fp16Rows):
            return np.asarray(cand, dtype=np.int64)
        cand = np.asarray(cand, dtype=np.int64)
        return np.where(cand >= 0, self._rerank.ids_of(np.maximum(cand, 0)), -1)

    def rerank_candidates(self, q: np.ndarray, cand: np.ndarray, k: int) -> list[list[Hit]]:
        """Re-order the code scan's candidates (rows of ``cand``, -1 = none) by their fp16 vectors'
        exact scores. ``cand`` holds the scan's labels: catalog ids, or store rows for ``pqfs``."""
        assert self._rerank is not None
        rows_store = self._rerank if isinstance(self._rerank, Fp16Rows) else None
        if rows_store is not None and faiss.omp_get_max_threads() > 1:
            # the fp16 decode is an OpenMP loop; 512 rows are too few to share (see _one_thread)
            with _one_thread():
                return self.rerank_candidates(q, cand, k)
        out = []
        for row, qv in zip(cand, q, strict=True):
            c = row[row >= 0]
            if len(c) == 0:
                out.append([])
                continue
            if rows_store is not None:
                vecs = rows_store.decode(c)
                c = rows_store.ids_of(c)
            else:
                vecs = self._rerank.reconstruct_batch(np.ascontiguousarray(c))
            if self.metric == "cosine":
                s = vecs @ qv
                order = np.argsort(-s, kind="stable")[:k]
                out.append([Hit(int(c[j]), float(s[j])) for j in order])
            else:
                d = ((vecs - qv) ** 2).sum(1)
                order = np.argsort(d, kind="stable")[:k]
                out.append([Hit(int(c[j]), float(math.sqrt(max(d[j], 0.0)))) for j in order])
        return out

    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        if isinstance(self._rerank, Fp16Rows):
            return self._rerank.ids()
        if self.kind == "flat":
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        ivf = _ivf(self._index)
        invlists = ivf.invlists
        out = []
        for list_no in range(ivf.nlist):
            size = invlists.list_size(list_no)
            if size:
                ptr = invlists.get_ids(list_no)
                out.append(faiss.rev_swig_ptr(ptr, size).copy())
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored vectors for ``ids`` (8-bit approximations for ``ivfsq8``, fp16 for the re-rank kinds),
        e.g. for re-ranking, relabelling and rebuilds."""
        ids_arr = as_ids(ids)
        if len(ids_arr) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "flat":
            return np.vstack([self._index.reconstruct(int(i)) for i in ids_arr]).astype(np.float32)
        if isinstance(self._rerank, Fp16Rows):
            rows = self._rerank.rows_of(ids_arr)
            if (rows < 0).any():
                raise KeyError(f"id {int(ids_arr[rows < 0][0])} is not in the index")
            return self._rerank.decode(rows)
        store = self._rerank if self._rerank is not None else self._index
        return store.reconstruct_batch(ids_arr).astype(np.float32)

    def metadata(self, id_: int) -> dict[str, Any] | None:
        """Metadata stored with ``id_`` (None when absent)."""
        return self._meta.get(int(id_))

    def rebuild(self, kind: str | None = None, nlist: int | None = None, train_sample: int = 200_000) -> None:
        """Re-create the index as ``kind`` from the stored vectors (used when the gallery outgrows a type).

        Streams: trains on a random sample, then moves the vectors over in chunks, so that rebuilding
        a compressed index never materialises every vector as float32 at once.
        """
        kind = kind or choose_kind(self.count(), self.recall_target, self.dim)
        ids_arr = self.ids()
        rng = np.random.default_rng(0)
        new_nlist = nlist or choose_nlist(len(ids_arr))
        sample_n = min(len(ids_arr), max(train_sample, 40 * new_nlist))
        sample_ids = np.sort(rng.choice(ids_arr, sample_n, replace=False)) if sample_n < len(ids_arr) else ids_arr
        old_index, old_rerank, old_kind = self._index, self._rerank, self.kind
        sample = self.reconstruct(sample_ids)
        self.train(kind, sample, nlist=new_nlist)
        new_index, new_rerank = self._index, self._rerank
        if isinstance(new_rerank, Fp16Rows):
            new_rerank.reserve(len(ids_arr))
        step = 200_000
        for start in range(0, len(ids_arr), step):
            part = ids_arr[start : start + step]
            self._index, self._rerank, self.kind = old_index, old_rerank, old_kind
            vecs = self.reconstruct(part)
            self._index, self._rerank, self.kind = new_index, new_rerank, kind
            self._add_vectors(part, vecs)
        self._index, self._rerank, self.kind = new_index, new_rerank, kind

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
        if kind is None:
            kind = (choose_kind(len(vecs), self.recall_target, self.dim) if self.requested_kind == "auto"
                    else self.requested_kind)
        ids_arr = as_ids(ids)
        if kind == "flat":
            self.train("flat", vecs[:0])
        else:
            nl = nlist or choose_nlist(len(vecs))
            rng = np.random.default_rng(0)
            sample_n = min(len(vecs), max(train_sample, 40 * nl))
            sample = vecs[rng.choice(len(vecs), sample_n, replace=False)] if sample_n < len(vecs) else vecs
            self.train(kind, sample, nlist=nl)
        if isinstance(self._rerank, Fp16Rows):
            self._rerank.reserve(len(vecs))
        step = 200_000
        for start in range(0, len(vecs), step):
            self._add_vectors(ids_arr[start : start + step], vecs[start : start + step])

    def reserve(self, n: int) -> None:
        """Room for ``n`` faces before streaming them through :meth:`add` (``pqfs``: the fp16 matrix is
        allocated once instead of grown by copies, which at 1M faces held +0.6 GB at the peak)."""
        if isinstance(self._rerank, Fp16Rows):
            self._rerank.reserve(int(n))

    def train(self, kind: str, sample: np.ndarray, nlist: int | None = None) -> None:
        """Start an empty index of ``kind`` trained on ``sample`` (then ``add`` vectors in chunks).

        This is how galleries larger than RAM-as-float are loaded: train on a few hundred thousand
        vectors, then stream the rest through :meth:`add`. The kind is pinned (no automatic rebuild).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown FAISS index kind {kind!r}")
        self._rerank = None
        self.pq_m = 0
        self.rerank = 0
        if kind == "flat":
            self._index = self._new_flat()
            self.nlist = 0
        else:
            sample = self._prep(sample)
            # pqfs: one list, every code is scanned
            self.nlist = 1 if kind == "pqfs" else (nlist or choose_nlist(max(len(sample), 1)))
            index = self._new_ivf(kind, self.nlist)
            if kind == "pqfs":
                # 64 tiny k-means in OpenMP regions: on a busy 2-core box, threads waiting at each
                # barrier made training 20x slower than one thread (52 s vs 2.7 s for 6,000 x 256)
                with _one_thread():
                    index.train(sample)
                index = self._plain_fast_scan(index)
            else:
                index.train(sample)
            if kind != "pqfs":
                _ivf(index).set_direct_map_type(faiss.DirectMap.Hashtable)
            if kind == "pqfs":
                self._rerank = Fp16Rows(self.dim)
            elif kind in RERANK_KINDS:
                self._rerank = self._new_rerank_store(index)
            if kind in RERANK_KINDS:
                self.rerank = PQFS_RERANK if kind == "pqfs" else RERANK_FACTOR
            self._index = index
            self.nprobe = 1 if kind == "pqfs" else (self.nprobe or default_nprobe(self.nlist, kind))
        self.kind = kind
        if self.requested_kind == "auto" and kind != "flat":
            self.requested_kind = kind

    def save(self) -> None:
        """Replace the index files as one unit: data files first, ``MANIFEST`` (their SHA-256) last.

        A crash anywhere before the manifest is replaced leaves a manifest that does not match the
        files on disk, which :meth:`_load` reports as damage (the lake then rebuilds the index from
        the catalog) instead of loading a new ``index.faiss`` with an old ``index.json``. Saves of one
        folder are serialised by a lock file so that two processes never interleave their files.
        """
        if self.path is None:
            raise ValueError("this index has no path; pass one to save it")
        from visionlake.faults import crash_point
        from visionlake.index.manifest import folder_lock, write_manifest

        self.path.mkdir(parents=True, exist_ok=True)
        encrypted = self.cipher is not None
        with folder_lock(self.path):
            digests = {"index.faiss": self._write_index(self._index, self.path / "index.faiss", b"faiss-index")}
            if isinstance(self._rerank, Fp16Rows):
                digests[FP16_FILE] = self._write_rows(self._rerank, self.path / FP16_FILE)
            elif self._rerank is not None:
                digests["rerank.faiss"] = self._write_index(self._rerank, self.path / "rerank.faiss",
                                                            b"faiss-rerank")
            crash_point("index.save.data_written")
            header = {
                "engine": "faiss",
                "kind": self.kind,
                "requested_kind": self.requested_kind,
                "dim": self.dim,
                "metric": self.metric,
                "nlist": self.nlist,
                "nprobe": self.nprobe,
                "pq_m": self.pq_m,
                "rerank": self.rerank,
                "recall_target": self.recall_target,
                "encrypted": encrypted,
                "count": self.count(),
                "bytes_in_ram": self.bytes_in_ram(),
                "metadata": {str(k): v for k, v in self._meta.items()},
            }
            data = json.dumps(header).encode()
            digests["index.json"] = _atomic_write(self.path / "index.json", data)
            write_manifest(self.path, digests)
            for stale in ("rerank.faiss", FP16_FILE):  # a previous kind's store, no longer listed
                if stale not in digests:
                    (self.path / stale).unlink(missing_ok=True)
        crash_point("index.save.committed")

    def bytes_in_ram(self) -> int:
        """Estimated resident bytes: codes + ids + hash-table direct map + coarse centroids."""
        n = self.count()
        if self.kind == "flat":
            return n * (4 * self.dim + 8 + 40)  # floats + id_map + rev_map (unordered_map node)
        if isinstance(self._rerank, Fp16Rows):  # 4-bit codes (no ids: labels are rows) + fp16 row + id
            return n * (self.pq_m // 2 + self._rerank.code_size + 8)
        ivf = _ivf(self._index)
        per = ivf.code_size + 8 + 40  # code + id in the inverted list + direct-map entry
        if isinstance(self._rerank, Fp16Rows):  # no direct map; the store: fp16 row + its id
            per = ivf.code_size + 8 + self._rerank.code_size + 8
        elif self._rerank is not None:
            per += _ivf(self._rerank).code_size + 8 + 40
        return n * per + self.nlist * self.dim * 4

    def describe(self) -> dict[str, Any]:
        size = 0
        if self.path is not None:
            for name in ("index.faiss", "rerank.faiss", FP16_FILE):
                if (self.path / name).exists():
                    size += (self.path / name).stat().st_size
        out = {
            "engine": "faiss",
            "kind": self.kind,
            "dim": self.dim,
            "metric": self.metric,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "count": self.count(),
            "bytes_on_disk": size,
            "bytes_in_ram": self.bytes_in_ram(),
            "encrypted": self.cipher is not None,
            "recall_target": self.recall_target,
        }
        if self.kind in RERANK_KINDS:
            out.update({"rerank": self.rerank, "rerank_store": "fp16"})
        if self.kind == "ivfpq":
            out["pq_m"] = self.pq_m
        return out

    # ------------------------------------------------------------------ internals
    def _write_index(self, index: faiss.Index, dest: Path, associated: bytes) -> tuple[str, int]:
        """Plain: faiss writes the file itself (no second copy in RAM). Encrypted: sealed in memory.

        Returns (sha256, bytes) of what was written, for the manifest.
        """
        if self.cipher is None:
            tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
            faiss.write_index(index, str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            digest = _file_digest(tmp)
            os.replace(tmp, dest)
            return digest
        data = self.cipher.encrypt(memoryview(faiss.serialize_index(index)), associated=associated)
        return _atomic_write(dest, data)

    def _read_index(self, src: Path, encrypted: bool, associated: bytes) -> faiss.Index:
        from visionlake.errors import LakeDamaged

        if not encrypted:
            try:
                return faiss.read_index(str(src))
            except RuntimeError as exc:
                raise LakeDamaged(src, f"FAISS cannot read it ({str(exc).splitlines()[0][:120]})") from None
        if self.cipher is None:
            raise ValueError(f"index {self.path} is encrypted and no key was given")
        data = self.cipher.decrypt(src.read_bytes(), associated=associated)
        try:
            return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise LakeDamaged(src, f"FAISS cannot read it ({str(exc).splitlines()[0][:120]})") from None

    def _load(self) -> None:
        assert self.path is not None
        from visionlake.errors import LakeDamaged
        from visionlake.index.manifest import verify_manifest

        verify_manifest(self.path)  # raises LakeDamaged naming the file that does not match
        try:
            header = json.loads((self.path / "index.json").read_text())
            if not isinstance(header, dict) or "kind" not in header or "dim" not in header:
                raise ValueError("not an index header")
        except (ValueError, UnicodeDecodeError) as exc:
            raise LakeDamaged(self.path / "index.json", f"not a valid index header ({exc})") from None
        if not (self.path / "index.faiss").exists():
            raise LakeDamaged(self.path / "index.faiss", "missing (index.json refers to it)")
        encrypted = bool(header.get("encrypted"))
        self._index = self._read_index(self.path / "index.faiss", encrypted, b"faiss-index")
        self.kind = header["kind"]
        self.dim = header["dim"]
        self.metric = header["metric"]
        self.nlist = header.get("nlist", 0)
        self.nprobe = self.nprobe or header.get("nprobe", 0)
        self.pq_m = header.get("pq_m", 0)
        self.rerank = header.get("rerank", 0)
        self.recall_target = header.get("recall_target", self.recall_target)
        if self.requested_kind == "auto":
            self.requested_kind = header.get("requested_kind", "auto")
        self._rerank = None
        if self.kind not in ("flat", "pqfs"):
            _ivf(self._index).set_direct_map_type(faiss.DirectMap.Hashtable)
        legacy_scan = None
        if self.kind == "pqfs" and faiss.try_extract_index_ivf(self._index) is not None:
            legacy_scan = self._index  # saved as one IVF list: the same codes move to a plain scan
            self._index = self._plain_fast_scan(legacy_scan)
        if self.kind == "pqfs" and (self.path / FP16_FILE).exists():
            self._rerank = self._read_rows(self.path / FP16_FILE, encrypted)
            if self._rerank.ntotal != self._index.ntotal:
                raise LakeDamaged(self.path / FP16_FILE, f"{self._rerank.ntotal} rows for "
                                                         f"{self._index.ntotal} codes")
        elif self.kind in RERANK_KINDS:
            self._rerank = self._read_index(self.path / "rerank.faiss", encrypted, b"faiss-rerank")
            _ivf(self._rerank).set_direct_map_type(faiss.DirectMap.Hashtable)
            if self.kind == "pqfs":  # saved before the row store: move the fp16 vectors into rows
                self._rerank = self._rows_from_ivf_store(self._rerank, legacy_scan)
        self._meta = {}
        self._inverted = {}
        self._filters = {}
        for k, v in header.get("metadata", {}).items():
            self._set_meta(int(k), v)

    def _remove_from_index(self, ids_arr: np.ndarray) -> int:
        if len(ids_arr) == 0 or self._index.ntotal == 0:
            return 0
        if self.kind == "flat":
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids_arr)))
        if isinstance(self._rerank, Fp16Rows):
            return self._remove_rows(ids_arr)
        # the hash-table direct map only accepts an array selector (O(1) per id)
        removed = int(self._index.remove_ids(faiss.IDSelectorArray(len(ids_arr), faiss.swig_ptr(ids_arr))))
        if self._rerank is not None:  # erasure: the fp16 copy goes too
            self._rerank.remove_ids(faiss.IDSelectorArray(len(ids_arr), faiss.swig_ptr(ids_arr)))
        return removed

    def _remove_rows(self, ids_arr: np.ndarray) -> int:
        """``pqfs`` removal: the last faces' fp16 rows and packed codes move into the freed positions
        (swap-with-last; code i and row i stay the same face), the tail is zeroed and dropped."""
        store = self._rerank
        assert isinstance(store, Fp16Rows)
        rows = store.rows_of(np.unique(ids_arr))
        rows = rows[rows >= 0]
        if len(rows) == 0:
            return 0
        movers, holes = store.remove_rows(rows)
        scan = self._index
        packer = scan.get_CodePacker()
        try:
            block = packer.block_size
            codes = faiss.rev_swig_ptr(scan.codes.get(), scan.codes.size())
            flat = np.zeros(packer.code_size, dtype=np.uint8)
            for src, dst in zip(movers.tolist(), holes.tolist(), strict=True):
                packer.unpack_1_c(faiss.swig_ptr(codes[(src // scan.bbs) * block:]), src % scan.bbs,
                                faiss.swig_ptr(flat))
                packer.pack_1_c(faiss.swig_ptr(flat), dst % scan.bbs, faiss.swig_ptr(codes[(dst // scan.bbs) * block:]))
            new_n = store.ntotal
            # the removed faces' codes leave memory: zero the tail of the last block, drop the rest
            keep = ((new_n + scan.bbs - 1) // scan.bbs) * block
            zero = np.zeros(packer.code_size, dtype=np.uint8)
            for pos in range(new_n, min(scan.ntotal, keep // block * scan.bbs)):
                packer.pack_1_c(faiss.swig_ptr(zero), pos % scan.bbs, faiss.swig_ptr(codes[(pos // scan.bbs) * block:]))
            codes[keep:] = 0  # whole blocks past the end: zeroed before the table shrinks (it keeps its buffer)
            scan.codes.resize(keep)
            scan.ntotal = new_n
            scan.ntotal2 = keep // block * scan.bbs  # the blocks the search visits
        finally:
            del packer
        return len(rows)

    def _fp16_subset(self, q: np.ndarray, allowed_ids: np.ndarray, k: int) -> list[list[Hit]]:
        """Exact top-``k`` over the selected faces' fp16 vectors (``pqfs`` with a broad filter), in
        blocks so that a selection of a million faces never becomes one float32 matrix."""
        store = self._rerank
        assert isinstance(store, Fp16Rows)
        rows = store.rows_of(allowed_ids)
        rows = np.sort(rows[rows >= 0])
        best_s = np.zeros((len(q), 0), dtype=np.float32)
        best_r = np.zeros((len(q), 0), dtype=np.int64)
        cosine = self.metric == "cosine"
        for start in range(0, len(rows), 65_536):
            part = rows[start : start + 65_536]
            vecs = store.decode(part)
            s = q @ vecs.T if cosine else -((q * q).sum(1)[:, None] - 2 * q @ vecs.T + (vecs * vecs).sum(1)[None, :])
            best_s = np.concatenate([best_s, s.astype(np.float32)], axis=1)
            best_r = np.concatenate([best_r, np.broadcast_to(part, s.shape)], axis=1)
            if best_s.shape[1] > k:
                keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
                best_s = np.take_along_axis(best_s, keep, axis=1)
                best_r = np.take_along_axis(best_r, keep, axis=1)
        out = []
        for srow, rrow in zip(best_s, best_r, strict=True):
            order = np.argsort(-srow, kind="stable")[:k]
            ids = store.ids_of(rrow[order])
            out.append([Hit(int(i), float(v) if cosine else float(math.sqrt(max(-v, 0.0))))
                        for i, v in zip(ids.tolist(), srow[order].tolist(), strict=True)])
        return out

    def _rows_from_ivf_store(self, ivf_store: faiss.Index, legacy_scan: faiss.Index | None) -> Fp16Rows:
        """Convert a ``pqfs`` index saved with an IVF fp16 store and a one-list IVF scan (codes
        labelled by catalog id) to the row store: row i = the scan list's i-th code (the order
        :meth:`_plain_fast_scan` copied them in), the same fp16 values (re-encoded exactly)."""
        if legacy_scan is None:
            from visionlake.errors import LakeDamaged

            assert self.path is not None
            raise LakeDamaged(self.path / "index.faiss", "a pqfs scan without its one IVF list")
        invlists = _ivf(legacy_scan).invlists
        ids = faiss.rev_swig_ptr(invlists.get_ids(0), invlists.list_size(0)).astype(np.int64).copy()
        store = Fp16Rows(self.dim)
        store.reserve(len(ids))
        for start in range(0, len(ids), 200_000):
            part = ids[start : start + 200_000]
            store.append(part, ivf_store.reconstruct_batch(part).astype(np.float32))
        return store

    def _write_rows(self, store: Fp16Rows, dest: Path) -> tuple[str, int]:
        """The row store, written like the FAISS files (temp file + fsync + rename, or sealed)."""
        if self.cipher is None:
            tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                store.write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            digest = _file_digest(tmp)
            os.replace(tmp, dest)
            return digest
        return _atomic_write(dest, self.cipher.encrypt(memoryview(store.to_bytes()), associated=b"fp16-rows"))

    def _read_rows(self, src: Path, encrypted: bool) -> Fp16Rows:
        from visionlake.errors import LakeDamaged

        if encrypted and self.cipher is None:
            raise ValueError(f"index {self.path} is encrypted and no key was given")
        # a wrong key raises DecryptionError as for the FAISS files; bad contents are damage
        data = self.cipher.decrypt(src.read_bytes(), associated=b"fp16-rows") if self.cipher and encrypted else None
        try:
            if data is not None:
                return Fp16Rows.from_bytes(data, self.dim)
            with open(src, "rb") as fh:
                return Fp16Rows.read(fh, self.dim)
        except (ValueError, EOFError) as exc:
            raise LakeDamaged(src, f"not a valid re-rank store ({str(exc).splitlines()[0][:120]})") from None

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
        if self._filters:
            self._filters.clear()  # remembered filters are only valid for the metadata they saw
        self._meta[id_] = meta
        for key, value in meta.items():
            self._inverted.setdefault(key, {}).setdefault(str(value), set()).add(id_)

    def _drop_meta(self, id_: int) -> None:
        old = self._meta.pop(id_, None)
        if not old:
            return
        if self._filters:
            self._filters.clear()
        for key, value in old.items():
            bucket = self._inverted.get(key, {}).get(str(value))
            if bucket is not None:
                bucket.discard(id_)

    def _filter(self, where: Where) -> list[Any]:
        """``[ids matching where, their FAISS selector or None until first needed]``, remembered per
        filter until the metadata next changes: a service answers the same few filters (a season, a
        category) over and over, and building the id array and the selector's hash set cost ~0.4 ms
        of a ~0.8 ms search of 20,000 looks."""
        key = tuple(sorted((str(k), tuple(sorted({str(v) for v in (w if isinstance(w, list | tuple | set | frozenset)
                                                                     else [w])})))
                           for k, w in where.items()))
        entry = self._filters.get(key)
        if entry is None:
            allowed = self._allowed(where)
            entry = [np.fromiter(allowed, dtype=np.int64, count=len(allowed)), None]
            if len(allowed) <= FILTER_CACHE_MAX_IDS:
                if len(self._filters) >= FILTER_CACHE_SIZE:
                    self._filters.clear()
                self._filters[key] = entry
        return entry

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


def _atomic_write(path: Path, data: bytes | memoryview) -> tuple[str, int]:
    """Write to a temporary file, fsync, then rename: readers never see half a file.

    The temporary name carries the process id so that two processes never share one. Returns
    (sha256, bytes) of the data for the manifest.
    """
    import hashlib

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest(), len(data)


def _file_digest(path: Path) -> tuple[str, int]:
    """(sha256, bytes) of a file, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n
