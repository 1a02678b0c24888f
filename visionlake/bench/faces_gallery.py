"""``visionlake bench identify`` and ``visionlake bench cluster``: gallery-scale 1:N search and
unknown-person grouping, measured on LFW.

Embedding the 9,056 LFW images takes minutes, so both commands share an embedding cache (bench
only, never part of a lake): one ``.npz`` per (pack, data folder) under ``--cache`` (default
``~/.cache/visionlake``), keyed by each image's relative path, size and modification time. A run
embeds only what the cache lacks and saves every 500 images, so an interrupted run resumes.

One face per image: the detected face nearest the image centre (LFW photos are centred on their
subject); images without a detected face are left out of identification and clustering and
counted in ``images_without_face``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from visionlake.config import shared_data_dir

DEFAULT_CACHE = Path(os.environ.get("VISIONLAKE_CACHE", Path.home() / ".cache" / "visionlake"))


# ---------------------------------------------------------------------------------------------- cache
def lfw_images(root: Path) -> list[str]:
    """Relative paths ``Person/Person_0001.jpg`` of every image under ``root/images`` (sorted)."""
    base = root / "images"
    if not base.is_dir():
        raise FileNotFoundError(f"no LFW images folder at {base}")
    return sorted(f"{d.name}/{f.name}" for d in base.iterdir() if d.is_dir() for f in d.iterdir()
                  if f.suffix.lower() in (".jpg", ".jpeg", ".png"))


def _cache_file(cache_dir: Path, pack: str, root: Path) -> Path:
    tag = hashlib.sha1(f"{pack}|{root.resolve()}".encode()).hexdigest()[:12]
    return cache_dir / f"embeddings-{pack}-{tag}.npz"


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _centre_face(pipe: Any, path: Path) -> np.ndarray | None:
    from visionlake.faces.pipeline import load_image

    img = load_image(str(path))
    pairs = pipe.analyse(img)
    if not pairs:
        return None
    cx, cy = img.width / 2, img.height / 2
    face, vec = min(pairs, key=lambda p: ((p[0].box[0] + p[0].box[2]) / 2 - cx) ** 2
                    + ((p[0].box[1] + p[0].box[3]) / 2 - cy) ** 2)
    return np.asarray(vec, dtype=np.float32)


_WORKER_PIPE: Any = None
_WORKER_KEY: tuple[str, int] | None = None


def _worker_embed(args: tuple[str, str, str, int]) -> tuple[str, np.ndarray | None]:
    global _WORKER_PIPE, _WORKER_KEY
    pack, root, rel, jitters = args
    if _WORKER_KEY != (pack, jitters):
        from visionlake.faces.pipeline import FacePipeline

        _WORKER_PIPE, _WORKER_KEY = FacePipeline(pack=pack, jitters=jitters), (pack, jitters)
    try:
        return rel, _centre_face(_WORKER_PIPE, Path(root) / "images" / rel)
    except Exception:  # noqa: BLE001 - an unreadable image is a miss, counted by the caller
        return rel, None


def cached_embeddings(root: Path, cache_dir: Path = DEFAULT_CACHE, pack: str = "dlib", workers: int = 2,
                      log: Any = None, jitters: int = 0, only: set[str] | None = None,
                      ) -> tuple[list[str], np.ndarray, np.ndarray, str]:
    """(relative paths, vectors (n, dim) with zeros where no face, found mask, pack name) for LFW.

    ``jitters`` embeds the way enrollment does (its own cache file); ``only`` limits the work to
    those relative paths (the others come back as not found).
    """
    from visionlake.faces.pipeline import FacePipeline

    pipe = FacePipeline(pack=pack)
    name, dim = pipe.name + (f"-j{jitters}" if jitters else ""), int(pipe.dim)
    rels = [r for r in lfw_images(root) if only is None or r in only]
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = _cache_file(cache_dir, name, root)
    known: dict[str, tuple[str, np.ndarray | None]] = {}
    if path.exists():
        z = np.load(path, allow_pickle=False)
        for r, st, v, ok in zip(z["paths"].tolist(), z["stamps"].tolist(), z["vectors"], z["found"],
                                strict=True):
            known[r] = (st, v if ok else None)
    stamps = {r: _stamp(root / "images" / r) for r in rels}
    todo = [r for r in rels if r not in known or known[r][0] != stamps[r]]

    def save() -> None:
        keys = sorted(known)
        vecs = np.zeros((len(keys), dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for i, k in enumerate(keys):
            if known[k][1] is not None:
                vecs[i] = known[k][1]
                found[i] = True
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, paths=np.array(keys), stamps=np.array([known[k][0] for k in keys]), vectors=vecs,
                 found=found)
        os.replace(tmp, path)

    if todo:
        if log:
            log(f"embedding {len(todo)} images with {name} ({workers} workers); cache {path}")
        done = 0
        for rel, vec in _embed_all(pack, root, todo, workers, jitters):
            known[rel] = (stamps[rel], vec)
            done += 1
            if done % 500 == 0:
                save()
                if log:
                    log(f"  {done}/{len(todo)}")
        save()
    vecs = np.zeros((len(rels), dim), dtype=np.float32)
    found = np.zeros(len(rels), dtype=bool)
    for i, r in enumerate(rels):
        v = known[r][1]
        if v is not None:
            vecs[i] = v
            found[i] = True
    return rels, vecs, found, name


def _embed_all(pack: str, root: Path, todo: list[str], workers: int,
               jitters: int = 0) -> Iterator[tuple[str, np.ndarray | None]]:
    args = [(pack, str(root), r, jitters) for r in todo]
    if workers <= 1:
        yield from map(_worker_embed, args)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(_worker_embed, args, chunksize=16)


def person_of(rel: str) -> str:
    """LFW identity of a relative path (its folder name)."""
    return rel.split("/", 1)[0]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------- identify
def split_gallery(rels: list[str], found: np.ndarray) -> tuple[list[int], list[int], list[int]]:
    """(gallery, probes, extra gallery) row indices.

    People with two or more embedded photos: their first photo (by file name) is in the gallery,
    the others are probes. People with one photo are extra gallery identities (real distractors).
    """
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rels):
        if found[i]:
            by_person[person_of(r)].append(i)
    gallery, probes, extra = [], [], []
    for _p, rows in sorted(by_person.items()):
        if len(rows) >= 2:
            gallery.append(rows[0])
            probes.extend(rows[1:])
        else:
            extra.append(rows[0])
    return gallery, probes, extra


def fit_distractor_model(vecs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Gaussian model of real embeddings: identity centres ~ N(mu, Sc), faces ~ centre + N(0, Sw).

    Centres and within-person scatter are estimated on people with two or more photos; sampled
    vectors are renormalised to unit length like the real ones.
    """
    centres, resid = [], []
    for lab in np.unique(labels):
        rows = vecs[labels == lab]
        if len(rows) >= 2:
            c = rows.mean(axis=0)
            centres.append(c)
            resid.append(rows - c)
    c = np.vstack(centres).astype(np.float64)
    r = np.vstack(resid).astype(np.float64)
    # the mean of m photos has within-person variance Sw/m in it: remove it from the centre scatter
    counts = np.array([np.sum(labels == lab) for lab in np.unique(labels) if np.sum(labels == lab) >= 2])
    sw = np.cov(r, rowvar=False) * (len(r) / max(len(r) - len(centres), 1))
    sc = np.cov(c, rowvar=False) - sw * float(np.mean(1.0 / counts))
    w, v = np.linalg.eigh(sc)
    sc = (v * np.clip(w, 1e-8, None)) @ v.T
    return {"mu": c.mean(axis=0), "sc": sc, "sw": sw}


def iter_distractors(model: dict[str, np.ndarray], n: int, per_identity: int = 4, seed: int = 0,
                     step: int = 100_000) -> Iterator[np.ndarray]:
    """``n`` synthetic unit vectors from ``n / per_identity`` synthetic identities, ``step`` at a time
    (a million 512-d vectors are 2 GB: they are indexed chunk by chunk, never held together)."""
    rng = np.random.default_rng(seed)
    lc = np.linalg.cholesky(model["sc"] + 1e-9 * np.eye(len(model["mu"])))
    lw = np.linalg.cholesky(model["sw"] + 1e-9 * np.eye(len(model["mu"])))
    for start in range(0, n, step):
        m = min(step, n - start)
        n_id = max(1, m // per_identity)
        centres = model["mu"] + rng.standard_normal((n_id, len(model["mu"]))) @ lc.T
        which = rng.integers(0, n_id, size=m)
        x = centres[which] + rng.standard_normal((m, len(model["mu"]))) @ lw.T
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield x.astype(np.float32)


def sample_distractors(model: dict[str, np.ndarray], n: int, per_identity: int = 4, seed: int = 0,
                       step: int = 100_000) -> np.ndarray:
    """``n`` synthetic unit vectors from ``n / per_identity`` synthetic identities."""
    out = np.empty((n, len(model["mu"])), dtype=np.float32)
    start = 0
    for chunk in iter_distractors(model, n, per_identity, seed, step):
        out[start : start + len(chunk)] = chunk
        start += len(chunk)
    return out


def bench_kind(n: int, dim: int, kind: str = "auto") -> str:
    """The index kind the bench uses: the lake's automatic policy for ``n`` vectors of ``dim``
    dimensions (wide templates get ``ivfsq8r`` past 1 GB of floats), unless forced."""
    from visionlake.index.faiss_index import choose_kind

    return choose_kind(n, dim=dim) if kind == "auto" else kind


#: Distractors generated per chunk: float64 temporaries of 25k x 512 are ~100 MB each, so the
#: generator stays far below the index in peak RSS (100k chunks added ~1.5 GB of peak).
DISTRACTOR_STEP = 25_000
#: Vectors the IVF coarse quantizer (and SQ8 ranges) are trained on.
TRAIN_SAMPLE = 200_000


def run_identify(root: Path, distractors: int, cache_dir: Path, pack: str = "dlib", workers: int = 2,
                 kind: str = "auto", nlist: int | None = None, nprobe: int | None = None,
                 queries: int = 1000, log: Any = None, gallery_jitters: int = 0,
                 layer_probes: int = 200, nprobe_sweep: list[int] | None = None,
                 rerank_sweep: list[int] | None = None) -> dict[str, Any]:
    """The measurements of ``bench identify`` (see the command's help); ``layer_probes`` > 0 adds
    ``through_layers``: per-probe latency through the Gallery object and the service
    (:mod:`visionlake.bench.identify_layers`) on a lake holding the real gallery; ``nprobe_sweep``
    adds ``sweep``: those settings on the same built index, chosen on the validation half of the
    probes and reported on the test half (:mod:`visionlake.bench.identify_sweep`); ``rerank_sweep``
    does the same for the re-rank pool of the kinds that have one (``rerank_sweep``)."""

    from visionlake.index.faiss_index import FaissIndex

    rels, vecs, found, name = cached_embeddings(root, cache_dir, pack, workers, log)
    labels_all = np.array([person_of(r) for r in rels])
    gallery, probes, extra = split_gallery(rels, found)
    g_rows = gallery + extra
    g_vecs = vecs[g_rows]
    g_labels = labels_all[g_rows]
    if gallery_jitters:  # enrolled the way ``faces enroll`` does it; probes stay plain templates
        g_rel = [rels[i] for i in g_rows]
        j_rels, j_vecs, j_found, _ = cached_embeddings(root, cache_dir, pack, workers, log, jitters=gallery_jitters,
                                                       only=set(g_rel))
        pos = {r: i for i, r in enumerate(j_rels)}
        if not all(j_found[pos[r]] for r in g_rel):
            raise RuntimeError("a gallery face found without jitters was not found with them")
        g_vecs = j_vecs[[pos[r] for r in g_rel]]
    p_vecs = vecs[probes]
    p_labels = labels_all[probes]

    # rank-1 without distractors (exact)
    sims = p_vecs @ g_vecs.T
    right_clean = g_labels[sims.argmax(axis=1)] == p_labels
    rank1_clean = float(np.mean(right_clean))
    del sims

    # realistic distractors: fitted on the real embeddings, generated and indexed chunk by chunk
    import faiss as _faiss

    from visionlake.index.faiss_index import choose_nlist

    ok = found
    model = fit_distractor_model(vecs[ok], labels_all[ok])
    dim = vecs.shape[1]
    n_real = len(g_vecs)
    total = n_real + int(distractors)
    chosen = bench_kind(total, dim, kind)
    index = FaissIndex(None, dim=dim, metric="cosine", kind=chosen, nprobe=nprobe)
    chunks = iter_distractors(model, distractors, step=DISTRACTOR_STEP) if distractors else iter(())
    gen_s = 0.0
    t1 = time.perf_counter()
    pending: list[np.ndarray] = []  # the first chunks: training sample, then indexed like the rest
    while sum(len(c) for c in pending) < TRAIN_SAMPLE - len(g_vecs):
        nxt = next(chunks, None)
        if nxt is None:
            break
        pending.append(nxt)
    gen_first_s = time.perf_counter() - t1
    realism = _realism(vecs[ok], labels_all[ok], pending[0] if pending else np.zeros((0, dim), np.float32))
    t0 = time.perf_counter()
    g32 = np.ascontiguousarray(g_vecs, dtype=np.float32)
    if chosen == "flat":
        index.train("flat", g32[:0])
    else:
        nl = nlist or choose_nlist(total)
        sample = np.vstack([g32, *pending])[:TRAIN_SAMPLE]
        index.train(chosen, sample, nlist=nl)
        index.reserve(total)
        del sample
    index._add_vectors(np.arange(n_real, dtype=np.int64), index._prep(g32))
    # exact top-1 over the same vectors, block by block (no second copy of the gallery)
    best_s, best_i = _faiss.knn(np.ascontiguousarray(p_vecs), g32, 1, _faiss.METRIC_INNER_PRODUCT)
    best_s, best_i = best_s[:, 0].copy(), best_i[:, 0].astype(np.int64)
    best_v = g32[best_i].copy()  # the exact top-1 vectors (the sweep asks which list holds them)
    start = n_real

    def next_chunk() -> np.ndarray:
        nonlocal gen_s
        if pending:
            return pending.pop(0)
        t = time.perf_counter()
        out = next(chunks, np.zeros((0, dim), np.float32))
        gen_s += time.perf_counter() - t
        return out

    chunk = next_chunk()
    while len(chunk):
        ids = np.arange(start, start + len(chunk), dtype=np.int64)
        index._add_vectors(ids, index._prep(chunk))
        d, i = _faiss.knn(np.ascontiguousarray(p_vecs), chunk, 1, _faiss.METRIC_INNER_PRODUCT)
        better = d[:, 0] > best_s
        best_s[better] = d[better, 0]
        best_i[better] = i[better, 0] + start
        best_v[better] = chunk[i[better, 0]]
        start += len(chunk)
        chunk = next_chunk()
    build_s = time.perf_counter() - t0 - gen_s
    gen_s += gen_first_s
    exact_top = best_i
    if log:
        log(f"index built: {index.describe()} in {build_s:.1f}s")

    # approximate search, batch (accuracy) and one query at a time (latency)
    approx = index.search(p_vecs, k=1)
    approx_top = np.array([h[0].id if h else -1 for h in approx], dtype=np.int64)
    rng = np.random.default_rng(1)
    q_rows = rng.choice(len(p_vecs), size=min(queries, len(p_vecs)), replace=False)
    lat = []
    for r in q_rows.tolist():
        t = time.perf_counter()
        index.search(p_vecs[r : r + 1], k=1)
        lat.append((time.perf_counter() - t) * 1000.0)
    all_count = total

    def rank1_of(top: np.ndarray) -> float:
        hit = top < n_real
        right = np.zeros(len(top), dtype=bool)
        right[hit] = g_labels[top[hit]] == p_labels[hit]
        return float(right.mean())

    rank1 = rank1_of(approx_top)
    rank1_exact = rank1_of(exact_top)
    desc = index.describe()
    from visionlake.bench.identify_sweep import _rank1, half_scores, sweep_nprobe, validation_mask

    val = validation_mask(p_labels)
    halves = {half: half_scores(approx_top, exact_top, right_clean, n_real, g_labels, p_labels, m)
              for half, m in (("validation", val), ("test", ~val))}
    for half, m in (("validation", val), ("test", ~val)):
        halves[half]["rank1_exact"] = round(float(_rank1(exact_top, n_real, g_labels, p_labels)[m].mean()), 4)
    sweep = rerank_out = None
    if nprobe_sweep and index.kind != "flat":
        sweep = sweep_nprobe(index, p_vecs, p_labels, g_labels, n_real, exact_top, best_v, right_clean,
                             nprobe_sweep, queries=min(queries, 300), log=log)
    if rerank_sweep and index._rerank is not None:
        rerank_out = sweep_nprobe(index, p_vecs, p_labels, g_labels, n_real, exact_top, best_v, right_clean,
                                  rerank_sweep, queries=min(queries, 300), log=log, param="rerank")
    layers = None
    if layer_probes > 0:
        layers = _layers(g_vecs, g_labels, p_vecs[q_rows[:layer_probes]], list(p_labels[q_rows[:layer_probes]]),
                         name, log)
    return {
        "pack": name,
        "images": len(rels),
        "images_without_face": int((~found).sum()),
        "gallery_people": len(gallery),
        "gallery_extra_people": len(extra),
        "probes": len(probes),
        "gallery_jitters": int(gallery_jitters),
        "distractors": int(distractors),
        "gallery_size": int(all_count),
        "rank1": round(rank1, 4),
        "rank1_exact": round(rank1_exact, 4),
        "rank1_no_distractors": round(rank1_clean, 4),
        "rank1_ratio": round(rank1 / rank1_clean, 4) if rank1_clean else None,
        "recall_at_1": round(float(np.mean(approx_top == exact_top)), 4),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p95_ms": round(float(np.percentile(lat, 95)), 3),
        "latency_queries": len(lat),
        "build_s": round(build_s, 2),
        "distractor_generation_s": round(gen_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "index": {"kind": desc["kind"], "nlist": desc["nlist"], "nprobe": desc["nprobe"],
                  "rerank_pool": index.rerank_pool(1) if index._rerank is not None else None,
                  "bytes_in_ram": desc.get("bytes_in_ram")},
        "halves": halves,
        "sweep": sweep,
        "rerank_sweep": rerank_out,
        "distractor_realism": realism,
        "through_layers": layers,
    }


def _layers(g_vecs: np.ndarray, g_labels: np.ndarray, probes: np.ndarray, truth: list[str], pack: str,
            log: Any = None) -> dict[str, Any]:
    """The real gallery in a temporary lake (one enrolled face per person), probes through both layers."""
    import tempfile

    from visionlake.bench.identify_layers import build_faces_lake, run_layers

    names = sorted(set(g_labels.tolist()))
    pos = {n: i for i, n in enumerate(names)}
    owners = np.array([pos[x] for x in g_labels.tolist()])
    with tempfile.TemporaryDirectory(prefix="vl-bench-identify-") as tmp:
        root = Path(tmp) / "lake"
        build_faces_lake(root, g_vecs, owners, names, pack)
        if log:
            log(f"layers: {len(g_vecs)} enrolled faces, {len(probes)} probes through Gallery and service")
        return {"gallery_faces": len(g_vecs), **run_layers(root, probes, truth, None)}


def run_layers_synthetic(faces: int, probes: int) -> dict[str, Any]:
    """``bench identify --synthetic N``: the layers only, on bench api's synthetic gallery (no LFW)."""
    import tempfile

    from visionlake.bench.identify_layers import build_faces_lake, run_layers, synthetic

    vecs, owners, names, p, truth = synthetic(faces, probes)
    with tempfile.TemporaryDirectory(prefix="vl-bench-identify-") as tmp:
        root = Path(tmp) / "lake"
        t0 = time.perf_counter()
        build_faces_lake(root, vecs, owners, names, "bench-synthetic-128")
        setup = time.perf_counter() - t0
        return {"bench": "identify --synthetic", "gallery_faces": faces, "gallery_people": len(names),
                "setup_s": round(setup, 1), "threshold": 0.5, "cpu_count": os.cpu_count(),
                "loadavg": [round(x, 2) for x in os.getloadavg()],
                "through_layers": run_layers(root, p, truth, 0.5)}


def _realism(vecs: np.ndarray, labels: np.ndarray, dvecs: np.ndarray, n: int = 2000) -> dict[str, Any]:
    """Impostor similarity quantiles: real vs real, and real vs synthetic (they should agree)."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, len(vecs), n * 4)
    b = rng.integers(0, len(vecs), n * 4)
    keep = labels[a] != labels[b]
    real = np.sum(vecs[a[keep]] * vecs[b[keep]], axis=1)
    out = {"real_impostor_q50": round(float(np.quantile(real, 0.5)), 4),
           "real_impostor_q999": round(float(np.quantile(real, 0.999)), 4)}
    if len(dvecs):
        c = rng.integers(0, len(dvecs), len(real))
        d = np.sum(vecs[a[keep]] * dvecs[c], axis=1)
        out["synthetic_impostor_q50"] = round(float(np.quantile(d, 0.5)), 4)
        out["synthetic_impostor_q999"] = round(float(np.quantile(d, 0.999)), 4)
    return out


# ---------------------------------------------------------------------------------------------- cluster
def run_cluster(root: Path, cache_dir: Path, pack: str = "dlib", workers: int = 2, threshold: float | None = None,
                method: str = "auto", log: Any = None) -> dict[str, Any]:
    """The measurements of ``bench cluster`` (see the command's help)."""
    from visionlake.faces.cluster import bcubed, cluster_vectors, dbscan_labels, default_threshold

    rels, vecs, found, name = cached_embeddings(root, cache_dir, pack, workers, log)
    v = vecs[found]
    truth = np.array([person_of(r) for r, ok in zip(rels, found, strict=True) if ok])
    thr = float(threshold) if threshold is not None else default_threshold(name)
    t0 = time.perf_counter()
    labels = cluster_vectors(v, thr, method)
    secs = time.perf_counter() - t0
    p, r, f = bcubed(truth, labels)
    t0 = time.perf_counter()
    db = dbscan_labels(v, eps=1.0 - thr, min_samples=2)
    db_s = time.perf_counter() - t0
    bp, br, bf = bcubed(truth, db)
    # the baseline at its best eps (chosen with the labels: an upper bound for DBSCAN)
    sweep = []
    for eps in (0.03, 0.04, 0.045, 0.05, 0.055, 0.06, 0.08, 0.10, 0.15, 0.20):
        sp, sr, sf = bcubed(truth, dbscan_labels(v, eps=eps, min_samples=2))
        sweep.append({"eps": eps, "bcubed_f": round(sf, 4)})
    best = max(sweep, key=lambda d: d["bcubed_f"])
    ours_sweep = []
    for t in (thr - 0.06, thr - 0.03, thr, thr + 0.03, thr + 0.06):
        sp, sr, sf = bcubed(truth, cluster_vectors(v, t, method))
        ours_sweep.append({"threshold": round(t, 4), "bcubed_f": round(sf, 4)})
    return {
        "pack": name,
        "images": len(rels),
        "faces": int(found.sum()),
        "images_without_face": int((~found).sum()),
        "identities": int(len(np.unique(truth))),
        "method": method if method != "auto" else ("average" if len(v) <= 20_000 else "cw"),
        "threshold": round(thr, 4),
        "clusters": int(len(np.unique(labels))),
        "bcubed_precision": round(p, 4),
        "bcubed_recall": round(r, 4),
        "bcubed_f": round(f, 4),
        "seconds": round(secs, 2),
        "baseline": {
            "method": "dbscan", "eps": round(1.0 - thr, 4), "min_samples": 2, "metric": "cosine",
            "clusters": int(len(np.unique(db))), "bcubed_precision": round(bp, 4), "bcubed_recall": round(br, 4),
            "bcubed_f": round(bf, 4), "seconds": round(db_s, 2),
            "best_eps_with_labels": best,
        },
        "ratio_f": round(f / bf, 4) if bf else None,
        "threshold_sweep": ours_sweep,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }

def _main() -> None:  # [PACK=arcface-s] python -m visionlake.bench.faces_gallery warm  (fill the cache only)
    import sys

    root = Path(sys.argv[2]) if len(sys.argv) > 2 else shared_data_dir() / "lfw"
    workers = int(os.environ.get("WORKERS", "2"))
    pack = os.environ.get("PACK", "dlib")
    rels, _v, found, name = cached_embeddings(root, DEFAULT_CACHE, pack, workers, log=print)
    print(json.dumps({"pack": name, "images": len(rels), "found": int(found.sum())}))


if __name__ == "__main__":
    _main()
