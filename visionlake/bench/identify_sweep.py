"""``bench identify --nprobe-sweep`` / ``--rerank-sweep``: search settings measured on ONE built index,
chosen on half the probes.

Building a million-face index takes ~10 minutes on the 2-core machine; searching it with another
``nprobe`` (IVF lists probed) or ``rerank`` (candidates re-ranked with fp16 vectors) takes seconds.
So the bench builds once and, per setting, measures recall@1 against exact search, rank-1 and
single-query latency. The probes are split by person (a stable hash of the name): the
*validation* half chooses the setting, the *test* half reports it, so the number quoted for the
chosen setting was never used to choose it.

For every setting the output also explains a miss: ``list_hit`` is the share of probes whose exact
top-1 sits in one of the probed lists (what an IVF with exact distances could reach at most), and
for re-rank kinds ``recall_at_1_codes`` is the recall of the scanned codes alone (what 8-bit
rounding costs before the fp16 re-rank).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import faiss
import numpy as np


def validation_mask(labels: np.ndarray) -> np.ndarray:
    """True for probes of people whose name's SHA-1 starts with an even byte (the validation half).

    A stable hash (not Python's salted ``hash``) so that every run splits the same way, and by
    person so that no one's photos sit on both sides.
    """
    return np.array([hashlib.sha1(str(x).encode()).digest()[0] % 2 == 0 for x in labels.tolist()], dtype=bool)


def _rank1(top: np.ndarray, n_real: int, g_labels: np.ndarray, p_labels: np.ndarray) -> np.ndarray:
    """Per probe: the top hit is a real gallery face of the probe's person."""
    right = np.zeros(len(top), dtype=bool)
    hit = (top >= 0) & (top < n_real)
    right[hit] = g_labels[top[hit]] == p_labels[hit]
    return right


def half_scores(top: np.ndarray, exact_top: np.ndarray, right_clean: np.ndarray, n_real: int,
                g_labels: np.ndarray, p_labels: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """recall@1 vs exact search, rank-1 and rank-1 ratio (vs no distractors) on the probes in ``mask``."""
    right = _rank1(top, n_real, g_labels, p_labels)[mask]
    clean = float(right_clean[mask].mean()) if mask.any() else 0.0
    rank1 = float(right.mean()) if mask.any() else 0.0
    return {"probes": int(mask.sum()),
            "recall_at_1": round(float(np.mean(top[mask] == exact_top[mask])), 4) if mask.any() else None,
            "rank1": round(rank1, 4),
            "rank1_ratio": round(rank1 / clean, 4) if clean else None}


def _latency(index: Any, q: np.ndarray) -> tuple[float, float]:
    lat = []
    for r in range(len(q)):
        t = time.perf_counter()
        index.search(q[r : r + 1], k=1)
        lat.append((time.perf_counter() - t) * 1000.0)
    return round(float(np.percentile(lat, 50)), 3), round(float(np.percentile(lat, 95)), 3)


def choose_setting(rows: list[dict[str, Any]], target: float = 0.99, ratio_target: float = 0.97,
                   p50_limit_ms: float = 10.0) -> dict[str, Any] | None:
    """The cheapest row (smallest ``value``: nprobe or re-rank pool) whose *validation* scores meet the goals.

    recall@1 must reach ``target`` plus one standard error of the validation estimate, so that a
    setting which only just passes on a lucky half is not chosen; test scores are never read.
    """
    for r in sorted(rows, key=lambda r: r["value"]):
        v = r["validation"]
        se = math.sqrt(max(v["recall_at_1"] * (1 - v["recall_at_1"]), 1e-12) / max(v["probes"], 1))
        if (v["recall_at_1"] >= target + se and (v["rank1_ratio"] or 0) >= ratio_target
                and r["p50_ms"] <= p50_limit_ms):
            return r
    return None


def sweep_nprobe(index: Any, p_vecs: np.ndarray, p_labels: np.ndarray, g_labels: np.ndarray, n_real: int,
                 exact_top: np.ndarray, exact_vecs: np.ndarray, right_clean: np.ndarray, nprobes: list[int],
                 queries: int = 200, target: float = 0.99, ratio_target: float = 0.97, p50_limit_ms: float = 10.0,
                 log: Any = None, param: str = "nprobe") -> dict[str, Any]:
    """Each value of ``param`` (``nprobe``, or ``rerank``: candidates re-ranked per hit) on the built IVF
    ``index`` (a :class:`FaissIndex`); the chosen one and its test scores.

    Choice (validation half only): the smallest value whose recall@1 is at least ``target`` plus one
    standard error (so that a lucky validation half does not pick a setting that misses on the
    other), whose rank-1 ratio is at least ``ratio_target`` and whose p50 is within
    ``p50_limit_ms``. The index's own settings are restored afterwards.
    """
    from visionlake.index.faiss_index import _ivf

    val = validation_mask(p_labels)
    test = ~val
    q = index._prep(p_vecs)
    ivf = _ivf(index._index)
    cap = ivf.nlist if param == "nprobe" else index.count()
    values = sorted({int(min(cap, max(1, n))) for n in nprobes})
    # which list holds each probe's exact top-1, and where that list ranks among the probe's lists
    _, top_list = ivf.quantizer.search(np.ascontiguousarray(exact_vecs, dtype=np.float32), 1)
    _, ranked = ivf.quantizer.search(q, min(ivf.nlist, max(values) if param == "nprobe" else index.nprobe))
    list_rank = np.full(len(q), np.iinfo(np.int64).max)
    pos_r, pos_c = np.nonzero(ranked == top_list)
    list_rank[pos_r] = pos_c
    rng = np.random.default_rng(3)
    val_rows = np.flatnonzero(val)
    lat_rows = rng.choice(val_rows, size=min(queries, len(val_rows)), replace=False)
    saved = index.nprobe, index.rerank
    rows = []
    try:
        for value in values:
            if param == "nprobe":
                index.nprobe = value
            else:
                index.rerank = value
            npb = index.nprobe
            t0 = time.perf_counter()
            params = faiss.SearchParametersIVF(nprobe=npb)
            codes_top = None
            if index._rerank is not None:
                _, cand = index._index.search(q, index.rerank_pool(1), params=params)
                codes_top = cand[:, 0].astype(np.int64)
                hits = index.rerank_candidates(q, cand, 1)
            else:
                hits = index.search(q, k=1)
            batch_s = time.perf_counter() - t0
            top = np.array([h[0].id if h else -1 for h in hits], dtype=np.int64)
            p50, p95 = _latency(index, q[lat_rows])
            row: dict[str, Any] = {"value": value, "nprobe": npb, "share_of_lists": round(npb / ivf.nlist, 4),
                                   "rerank_pool": index.rerank_pool(1) if index._rerank is not None else None,
                                   "p50_ms": p50, "p95_ms": p95,
                                   "batch_ms_per_probe": round(1000 * batch_s / len(q), 3)}
            for name, mask in (("validation", val), ("test", test)):
                row[name] = half_scores(top, exact_top, right_clean, n_real, g_labels, p_labels, mask)
                row[name]["list_hit"] = round(float(np.mean(list_rank[mask] < npb)), 4)
                if codes_top is not None:
                    row[name]["recall_at_1_codes"] = round(float(np.mean(codes_top[mask] == exact_top[mask])), 4)
            rows.append(row)
            if log:
                log(f"{param} {value}: validation {row['validation']}, p50 {p50} ms")
    finally:
        index.nprobe, index.rerank = saved

    chosen = choose_setting(rows, target, ratio_target, p50_limit_ms)
    return {
        "kind": index.kind, "nlist": int(ivf.nlist), "parameter": param,
        "split": "by person: validation = SHA-1(name)[0] even, test = odd",
        "rule": (f"smallest {param} with validation recall_at_1 >= {target} + 1 standard error, "
                 f"rank1_ratio >= {ratio_target}, p50 <= {p50_limit_ms} ms"),
        "latency_queries": len(lat_rows),
        "settings": rows,
        "chosen": None if chosen is None else {param: chosen["value"], "nprobe": chosen["nprobe"],
                                               "rerank_pool": chosen["rerank_pool"],
                                               "nlist_over_nprobe": round(ivf.nlist / chosen["nprobe"], 2),
                                               "validation": chosen["validation"], "test": chosen["test"],
                                               "p50_ms": chosen["p50_ms"], "p95_ms": chosen["p95_ms"]},
    }
