"""Per-probe identification latency through the layers a user calls: the ``Gallery`` object and the
HTTP service, on one lake (part of ``visionlake bench identify``).

The vector search alone is measured by ``bench identify`` itself (``p50_ms``: one FAISS query). Here the
same kind of probe goes through everything a caller pays for: the catalog generation check, the
people ranking, names, threshold and the audit entry (:class:`visionlake.faces.identify.Gallery`,
synchronous audit as the CLI and Python API do), and then through ``POST /collections/{c}/faces/
identify-embedding`` of a real uvicorn server on 127.0.0.1 (one keep-alive connection, one request at
a time, audit buffered as the service does). Catalog statements and transactions per probe are
counted with a SQLAlchemy event listener on the Gallery run. FAISS runs one thread in both layers
(the service's default, ``VISIONLAKE_SEARCH_THREADS``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

COLLECTION = "gallery"


def build_faces_lake(root: Path, vecs: np.ndarray, owners: np.ndarray, names: list[str], pack: str) -> None:
    """A lake whose collection :data:`COLLECTION` holds ``vecs`` as enrolled faces of ``names[owners]``.

    Rows go in with bulk inserts (encrypted templates, as enrollment stores them) and the index is
    built once: enrolling thousands of people photo by photo would measure enrollment, not identify.
    """
    from sqlalchemy import insert

    from visionlake.catalog.models import Image
    from visionlake.faces.models import Face, Person
    from visionlake.faces.sync import face_index, index_meta, seal
    from visionlake.lake import Lake

    lake = Lake(root)
    col = lake.create_collection(COLLECTION, "faces")
    with lake.session() as s:
        s.execute(insert(Person), [{"id": i + 1, "collection_id": col.id, "name": n, "consent": "bench"}
                                   for i, n in enumerate(names)])
        s.execute(insert(Image), [{"id": 1, "collection_id": col.id, "sha256": "0" * 64, "path": "bench",
                                   "meta": {"source": "bench"}}])
        step = 20_000
        for a in range(0, len(vecs), step):
            s.execute(insert(Face), [
                {"id": i + 1, "collection_id": col.id, "image_id": 1, "box": [0, 0, 100, 100], "landmarks": [],
                 "score": 1.0, "quality": 1.0, "embedding": seal(lake.cipher, vecs[i]), "pack": pack,
                 "person_id": int(owners[i]) + 1} for i in range(a, min(len(vecs), a + step))])
    index = face_index(lake, COLLECTION, vecs.shape[1])
    index.add(np.arange(1, len(vecs) + 1, dtype=np.int64), vecs.astype(np.float32),
              [index_meta(int(o) + 1) for o in owners])
    index.save()
    lake.close()


def _pcts(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "mean_ms": round(float(a.mean()), 3)}


def through_gallery(root: Path, probes: np.ndarray, truth: list[str] | None, threshold: float | None,
                    warmup: int = 5) -> dict[str, Any]:
    """Sequential ``Gallery.identify_vectors`` calls: latency, catalog trips per probe, top-1."""
    import faiss
    from sqlalchemy import event

    from visionlake.faces.identify import Gallery
    from visionlake.lake import Lake

    faiss.omp_set_num_threads(1)  # as the service does: one query's threads only contend on a busy machine
    lake = Lake(root, create=False)
    g = Gallery(lake, COLLECTION)
    for q in probes[:warmup]:
        g.identify_vectors(q, top=5, threshold=threshold)
    stmts = [0]
    txs = [0]

    def on_stmt(*_a: Any) -> None:
        stmts[0] += 1

    def on_begin(*_a: Any) -> None:
        txs[0] += 1

    event.listen(lake.engine, "before_cursor_execute", on_stmt)
    event.listen(lake.engine, "begin", on_begin)
    lat, right = [], 0
    try:
        for i, q in enumerate(probes):
            t = time.perf_counter()
            out = g.identify_vectors(q, top=5, threshold=threshold)
            lat.append((time.perf_counter() - t) * 1000.0)
            if truth is not None:
                right += out["faces"][0]["identity"] == truth[i]
    finally:
        event.remove(lake.engine, "before_cursor_execute", on_stmt)
        event.remove(lake.engine, "begin", on_begin)
        lake.close()
    return {"probes": len(probes), **_pcts(lat),
            "catalog_statements_per_probe": round(stmts[0] / len(probes), 2),
            "catalog_transactions_per_probe": round(txs[0] / len(probes), 2),
            "reloads": g.reloads,
            "top1_accuracy": round(right / len(probes), 4) if truth is not None else None,
            "audit": "synchronous (one catalog transaction per probe, as the CLI and Python API)"}


async def _sequential(port: int, key: str, probes: np.ndarray, threshold: float | None,
                      warmup: int) -> tuple[list[float], int]:
    from visionlake.bench.api import _Conn, _request_bytes

    conn = _Conn("127.0.0.1", port)
    path = f"/collections/{COLLECTION}/faces/identify-embedding"
    lat, errors = [], 0
    try:
        for i, q in enumerate(np.vstack([probes[:warmup], probes])):
            body: dict[str, Any] = {"embeddings": [[float(f"{v:.9g}") for v in q]], "top": 5}
            if threshold is not None:
                body["threshold"] = threshold
            data = _request_bytes("127.0.0.1", port, key, path, body)
            t = time.perf_counter()
            status, _ = await conn.request(data)
            if i >= warmup:
                lat.append((time.perf_counter() - t) * 1000.0)
                errors += status != 200
    finally:
        await conn.close()
    return lat, errors


def through_service(root: Path, probes: np.ndarray, threshold: float | None, warmup: int = 5) -> dict[str, Any]:
    """The same probes, one at a time, through a uvicorn server on 127.0.0.1 (in a child process)."""

    from visionlake.bench.api import start_server
    from visionlake.lake import Lake
    from visionlake.service.auth import create_key

    lake = Lake(root, create=False)
    key = create_key(lake, "viewer", name="bench-identify", rate_per_s=1e6)["key"]
    lake.close()
    proc, port = start_server(root, 1)
    try:
        lat, errors = asyncio.run(_sequential(port, key, probes, threshold, warmup))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"probes": len(lat), "errors": errors, **_pcts(lat),
            "server": "uvicorn, 1 worker, 127.0.0.1, one keep-alive connection, sequential requests",
            "audit": "buffered (the service's batch writer)"}


def run_layers(root: Path, probes: np.ndarray, truth: list[str] | None, threshold: float | None
               ) -> dict[str, Any]:
    """Both layers on the lake at ``root`` (built by :func:`build_faces_lake`)."""
    return {"gallery": through_gallery(root, probes, truth, threshold),
            "service": through_service(root, probes, threshold)}


def synthetic(n_faces: int, n_probes: int, dim: int = 128, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, list[str]]:
    """bench api's synthetic gallery: ``n_faces / 4`` people, four noisy faces each, and probes."""
    rng = np.random.default_rng(seed)
    n_people = max(1, n_faces // 4)
    centres = rng.standard_normal((n_people, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    owners = np.arange(n_faces) % n_people
    noise = 0.35 / np.sqrt(dim)
    vecs = centres[owners] + noise * rng.standard_normal((n_faces, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    names = [f"person-{i:06d}" for i in range(n_people)]
    who = rng.integers(0, n_people, n_probes)
    probes = centres[who] + noise * rng.standard_normal((n_probes, dim)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return vecs, owners, names, probes, [names[i] for i in who]


__all__ = ["build_faces_lake", "run_layers", "synthetic", "through_gallery", "through_service"]
