"""``visionlake bench scale``: build time, bytes, latency and recall of a vector index at 10^6-10^7 faces.

Vectors are drawn to behave like face templates, not uniform noise: identity centres plus
within-identity scatter. When the faces engineers' embeddings cache exists
(``~/.cache/visionlake/**/*.npz`` holding ``embeddings`` and ``labels``/``names``, e.g. LFW through
dlib), the centres are drawn from a Gaussian fitted to the per-identity means and the scatter from the
pooled within-identity covariance. Otherwise the documented default: ~100 photos per identity,
isotropic identity centres on the unit sphere, scatter sigma chosen so that two photos of one person
have cosine ~0.6 (the setting of ``../shared/notes/vector-engines.md``); probes are new photos of
known identities, as in identification.

Nothing holds all vectors: they are generated chunk by chunk from per-chunk seeds (so a second
engine sees exactly the same vectors), added, and scored against the probes to keep a running exact
top-k per probe. Peak memory is the index plus one chunk plus a (probes x 50k) score block.
"""

from __future__ import annotations

import gc
import glob
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from visionlake.errors import BadInput

CHUNK = 200_000
GT_BLOCK = 50_000
K_TRUTH = 10
#: Default generator: photos per identity and same-person cosine (see module docstring).
PER_IDENTITY = 100
SAME_PERSON_COSINE = 0.6


# ---------------------------------------------------------------------------------------- vectors
@dataclass
class FaceLikeGenerator:
    """Clustered unit vectors: ``centre(identity) + scatter``, reproducible chunk by chunk."""

    dim: int
    n_identities: int
    seed: int = 0
    source: str = "default"
    centres: np.ndarray | None = None
    scatter_chol: np.ndarray | None = None  # within-identity covariance factor (fitted), else isotropic
    sigma: float = 0.0

    @classmethod
    def default(cls, dim: int, n_vectors: int, seed: int = 0) -> FaceLikeGenerator:
        n_id = max(1, n_vectors // PER_IDENTITY)
        rng = np.random.default_rng(seed)
        c = rng.standard_normal((n_id, dim), dtype=np.float32)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        # |c|=1, scatter N(0, s^2 I): cos(x1, x2) ~ 1 / (1 + d s^2) = SAME_PERSON_COSINE
        sigma = math.sqrt((1 / SAME_PERSON_COSINE - 1) / dim)
        return cls(dim, n_id, seed, "default: isotropic centres, same-person cosine 0.6", c, None, sigma)

    @classmethod
    def fitted(cls, emb: np.ndarray, labels: np.ndarray, n_vectors: int, seed: int = 0,
               source: str = "") -> FaceLikeGenerator:
        """Fit centre and scatter Gaussians to real templates grouped by person."""
        emb = np.asarray(emb, dtype=np.float64)
        dim = emb.shape[1]
        groups = [emb[labels == lab] for lab in np.unique(labels)]
        means = np.array([g.mean(0) for g in groups])
        within = np.concatenate([g - g.mean(0) for g in groups if len(g) > 1])
        dof = max(1, len(within) - sum(1 for g in groups if len(g) > 1))
        cov_w = within.T @ within / dof + 1e-6 * np.eye(dim)
        mu = means.mean(0)
        cov_b = np.cov(means.T) - cov_w / max(1.0, float(np.mean([len(g) for g in groups]))) + 1e-6 * np.eye(dim)
        w, v = np.linalg.eigh(cov_b)
        cov_b = (v * np.clip(w, 1e-6, None)) @ v.T
        n_id = max(1, n_vectors // PER_IDENTITY)
        rng = np.random.default_rng(seed)
        c = (mu + rng.standard_normal((n_id, dim)) @ np.linalg.cholesky(cov_b).T).astype(np.float32)
        return cls(dim, n_id, seed, source, c, np.linalg.cholesky(cov_w).T.astype(np.float32), 0.0)

    def draw(self, n: int, seed: int) -> np.ndarray:
        assert self.centres is not None
        rng = np.random.default_rng(seed)
        who = rng.integers(self.n_identities, size=n)
        noise = rng.standard_normal((n, self.dim), dtype=np.float32)
        noise = noise @ self.scatter_chol if self.scatter_chol is not None else noise * np.float32(self.sigma)
        x = self.centres[who] + noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32, copy=False)

    def chunks(self, n: int, size: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` chunks of the gallery; chunk j always comes from seed (seed, j)."""
        for j, start in enumerate(range(0, n, size)):
            m = min(size, n - start)
            yield np.arange(start, start + m, dtype=np.int64), self.draw(m, seed=1_000_003 * (self.seed + 1) + j)

    def same_person_cosine(self, n: int = 2000) -> float:
        """Measured mean cosine of two photos of one person (reported with the results)."""
        rng = np.random.default_rng(12345)
        who = rng.integers(self.n_identities, size=n)
        saved = self.n_identities
        a = self._draw_for(who, rng)
        b = self._draw_for(who, rng)
        self.n_identities = saved
        return float(np.mean(np.sum(a * b, axis=1)))

    def _draw_for(self, who: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        assert self.centres is not None
        noise = rng.standard_normal((len(who), self.dim), dtype=np.float32)
        noise = noise @ self.scatter_chol if self.scatter_chol is not None else noise * np.float32(self.sigma)
        x = self.centres[who] + noise
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def find_embeddings_cache(dim: int) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Real templates + person labels from ``~/.cache/visionlake`` (or VISIONLAKE_CACHE), if any fit."""
    root = Path(os.environ.get("VISIONLAKE_CACHE", Path.home() / ".cache" / "visionlake"))
    for f in sorted(glob.glob(str(root / "**" / "*.npz"), recursive=True)):
        try:
            with np.load(f, allow_pickle=False) as z:
                keys = set(z.files)
                ek = next((k for k in ("embeddings", "vectors", "X") if k in keys), None)
                lk = next((k for k in ("labels", "names", "person", "persons", "y") if k in keys), None)
                if ek is None or (lk is None and "paths" not in keys):
                    continue
                emb = np.asarray(z[ek])
                if lk is not None:
                    lab = np.asarray(z[lk])
                else:  # the faces bench cache: <Person_Name>/<file>.jpg paths, person = folder
                    lab = np.array([Path(str(p)).parent.name for p in z["paths"]])
                if "found" in keys:  # rows where no face was found hold no template
                    keep = np.asarray(z["found"], dtype=bool)
                    emb, lab = emb[keep], lab[keep]
        except Exception:  # noqa: BLE001 - a foreign or broken cache file is skipped, not fatal
            continue
        if emb.ndim == 2 and emb.shape[1] == dim and len(lab) == len(emb):
            _, counts = np.unique(lab, return_counts=True)
            if (counts > 1).sum() >= 20:
                return emb, lab, f
    return None


# ---------------------------------------------------------------------------------------- truth
class RunningTopK:
    """Exact top-k inner products of fixed probes over a gallery seen chunk by chunk."""

    def __init__(self, probes: np.ndarray, k: int = K_TRUTH) -> None:
        self.probes = probes
        self.k = k
        self.scores = np.full((len(probes), k), -np.inf, dtype=np.float32)
        self.ids = np.full((len(probes), k), -1, dtype=np.int64)

    def update(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        for s in range(0, len(vecs), GT_BLOCK):
            block = vecs[s : s + GT_BLOCK]
            sims = self.probes @ block.T
            kk = min(self.k, sims.shape[1])
            part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            cand_s = np.take_along_axis(sims, part, axis=1)
            cand_i = ids[s : s + GT_BLOCK][part]
            all_s = np.concatenate([self.scores, cand_s], axis=1)
            all_i = np.concatenate([self.ids, cand_i], axis=1)
            order = np.argsort(-all_s, axis=1, kind="stable")[:, : self.k]
            self.scores = np.take_along_axis(all_s, order, axis=1)
            self.ids = np.take_along_axis(all_i, order, axis=1)


def recall(found: list[list[int]], truth: np.ndarray) -> dict[str, float]:
    """recall@1: the exact nearest is the first hit; recall@10: share of the exact top-10 found in 10."""
    r1 = np.mean([bool(f) and f[0] == t[0] for f, t in zip(found, truth, strict=True)])
    r10 = np.mean([len(set(f[:10]) & set(t[:10].tolist())) / 10 for f, t in zip(found, truth, strict=True)])
    return {"recall_at_1": round(float(r1), 4), "recall_at_10": round(float(r10), 4)}


def _rss() -> int:
    return psutil.Process(os.getpid()).memory_info().rss


def _dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------- runs
def run_engine(engine: str, n: int, gen: FaceLikeGenerator, probes: np.ndarray, truth: RunningTopK | None,
               workdir: Path, kind: str = "auto", nprobe: int | None = None,
               train_n: int = 200_000, time_budget_s: float | None = None) -> dict[str, Any]:
    """Build ``engine`` over the first ``n`` generated vectors (updating ``truth`` if given), then query."""
    from visionlake.index.faiss_index import FaissIndex, choose_kind, choose_nlist

    gc.collect()
    rss0 = _rss()
    t_build = 0.0
    if engine == "faiss":
        ix: Any = FaissIndex(workdir / "faiss", dim=gen.dim, kind=kind, nprobe=nprobe)
        chosen = choose_kind(n, dim=gen.dim) if kind == "auto" else kind
        if chosen != "flat":
            sample = gen.draw(min(n, max(train_n, 40 * choose_nlist(n))), seed=777)
            t0 = time.perf_counter()
            ix.train(chosen, sample, nlist=choose_nlist(n))
            t_build += time.perf_counter() - t0
            del sample
        else:
            ix.train("flat", np.zeros((0, gen.dim), dtype=np.float32))
    elif engine == "milvus-lite":
        from visionlake.index.milvus_index import MilvusIndex

        ix = MilvusIndex(f"milvus-lite:{workdir / 'milvus.db'}", dim=gen.dim, collection="bench")
    else:
        raise BadInput(f"unknown index {engine!r}; choose faiss or milvus-lite")
    added = 0
    stopped_early = False
    for ids, vecs in gen.chunks(n):
        t0 = time.perf_counter()
        ix.add(ids, vecs)
        t_build += time.perf_counter() - t0
        added += len(ids)
        if truth is not None:
            truth.update(ids, vecs)
        del vecs
        if time_budget_s is not None and t_build > time_budget_s and added < n:
            stopped_early = True
            break
    t0 = time.perf_counter()
    ix.save()
    t_save = time.perf_counter() - t0
    gc.collect()
    rss_index = _rss() - rss0
    disk = _dir_bytes(workdir / "faiss") if engine == "faiss" else _dir_bytes(workdir / "milvus.db")
    # one query at a time, as an identification request arrives
    lat = []
    found: list[list[int]] = []
    ix.search(probes[:5], k=10)  # warm-up
    for q in probes:
        t0 = time.perf_counter()
        hits = ix.search(q[None, :], k=10)[0]
        lat.append(time.perf_counter() - t0)
        found.append([h.id for h in hits])
    out: dict[str, Any] = {
        "engine": engine,
        "vectors": added,
        "build_s": round(t_build, 1),
        "save_s": round(t_save, 1),
        "bytes_on_disk": disk,
        "bytes_per_vector_disk": round(disk / max(added, 1), 1),
        "rss_index_bytes": rss_index,
        "bytes_per_vector_ram": round(rss_index / max(added, 1), 1),
        "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
        "p95_ms": round(float(np.percentile(lat, 95)) * 1e3, 3),
        "describe": ix.describe(),
    }
    if stopped_early:
        out["stopped_early"] = f"build budget of {time_budget_s:.0f} s spent after {added} of {n} vectors"
    out["_found"] = found
    ix.close()
    del ix
    gc.collect()
    return out


def bench_scale(vectors: int, dim: int, engines: list[str], probes_n: int = 1000, kind: str = "auto",
                nprobe: int | None = None, milvus_vectors: int | None = None,
                milvus_budget_s: float | None = 900.0, seed: int = 0) -> dict[str, Any]:
    """The whole benchmark; returns the JSON-able report."""
    from visionlake.bench.memory import PeakRSS

    fitted = find_embeddings_cache(dim)
    if fitted is not None:
        gen = FaceLikeGenerator.fitted(fitted[0], fitted[1], vectors, seed=seed, source=f"fitted to {fitted[2]}")
    else:
        gen = FaceLikeGenerator.default(dim, vectors, seed=seed)
    probes = gen.draw(probes_n, seed=424242)
    report: dict[str, Any] = {
        "vectors": vectors,
        "dim": dim,
        "probes": probes_n,
        "distribution": {"source": gen.source, "identities": gen.n_identities,
                         "same_person_cosine": round(gen.same_person_cosine(), 3)},
        "machine": {"cpus": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "runs": [],
        "goal": {"recall_at_1": 0.95, "p50_ms": 20, "peak_rss_mb": 8000, "build_s": 1800},
    }
    with tempfile.TemporaryDirectory(prefix="vl-scale-") as tmp, PeakRSS() as mem:
        truths: dict[int, RunningTopK] = {}
        for engine in engines:
            n = vectors if engine == "faiss" else min(vectors, milvus_vectors or vectors)
            wd = Path(tmp) / engine
            wd.mkdir()
            truth = None if n in truths else RunningTopK(probes)
            budget = milvus_budget_s if engine != "faiss" else None
            res = run_engine(engine, n, gen, probes, truth, wd, kind=kind, nprobe=nprobe, time_budget_s=budget)
            if truth is not None and res["vectors"] == n:
                truths[n] = truth
            t = truths.get(res["vectors"])
            if t is None:  # stopped early: exact truth over the prefix it did index
                t = RunningTopK(probes)
                for ids, vecs in gen.chunks(res["vectors"]):
                    t.update(ids, vecs)
                truths[res["vectors"]] = t
            res.update(recall(res.pop("_found"), t.ids))
            report["runs"].append(res)
            for f in wd.rglob("*"):
                if f.is_file():
                    f.unlink()
    report["peak_rss_mb"] = mem.peak_mb
    faiss_run = next((r for r in report["runs"] if r["engine"] == "faiss"), None)
    if faiss_run is not None:
        report["meets_goal"] = bool(
            faiss_run["recall_at_1"] >= 0.95 and faiss_run["p50_ms"] <= 20
            and mem.peak_mb <= 8000 and faiss_run["build_s"] <= 1800
        )
    others = [r for r in report["runs"] if r["engine"] != "faiss"]
    if faiss_run is not None and others:
        report["ratios_vs_faiss"] = {
            r["engine"]: {"p50": round(r["p50_ms"] / max(faiss_run["p50_ms"], 1e-9), 1),
                          "build_s_per_vector": round((r["build_s"] / max(r["vectors"], 1))
                                                      / max(faiss_run["build_s"] / faiss_run["vectors"], 1e-12), 1)}
            for r in others
        }
    return report
