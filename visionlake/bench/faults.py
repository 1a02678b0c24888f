"""``visionlake bench faults``: N random kills during a mixed ingest, then count what was lost.

Each round starts ``visionlake ingest`` in a child process into one of two collections (``plain``:
thumbnails; ``fashion``: thumbnails, colours and look embeddings from a tiny built-in model) and kills
it with SIGKILL: half the rounds at a random moment (after a random delay), half at a random named
crash point (:data:`visionlake.faults.CRASH_POINTS`) on a random hit. After the last kill, one clean
ingest per collection runs to completion ("recovery") and ``visionlake check`` verifies the lake.

A round whose run finishes before its kill (the collection was already complete, or the crash
point was not reached) counts in ``rounds`` but not in ``kills``. Reported (all zero expected):
``images_lost`` (source images missing from the catalog),
``vectors_lost`` (fashion embeddings in the catalog but not in the saved index), ``vectors_extra``,
``duplicates`` (a path or a content hash recorded twice), plus ``recover_s``.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Crash points an ingest run can reach (the others belong to enroll, forget and the service).
INGEST_POINTS = ("ingest.chunk.before_commit", "ingest.chunk.committed", "ingest.finalize.before_save",
                 "index.save.data_written", "index.save.committed")


def _photos(folder: Path, n: int, seed: int) -> dict[str, str]:
    """``n`` distinct synthetic photos; returns sha256 -> path."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        arr = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
        p = folder / f"p{i:05d}.jpg"
        Image.fromarray(arr).resize((96, 96), Image.Resampling.NEAREST).save(p, quality=90)
        out[hashlib.sha256(p.read_bytes()).hexdigest()] = str(p)
    return out


def _ingest_cmd(lake: Path, src: Path, collection: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "visionlake", "--lake", str(lake), "ingest", str(src), "-c", collection,
            "--workers", str(workers), "--json"]


def run_faults(kills: int, images: int, workers: int, seed: int, tmp: Path) -> dict[str, Any]:
    """The benchmark itself (also called by the heavy test)."""
    from visionlake.check import check_lake
    from visionlake.lake import Lake

    rng = random.Random(seed)
    lake = tmp / "lake"
    srcs = {"plain": tmp / "src_plain", "fashion": tmp / "src_fashion"}
    expected = {"plain": _photos(srcs["plain"], images, seed), "fashion": _photos(srcs["fashion"], images, seed + 1)}
    lk = Lake(lake)
    lk.create_collection("plain", "plain")
    model = "none"
    settings: dict[str, Any] = {}
    try:
        from visionlake.fashion.tiny_model import build_tiny_model

        settings = {"tagger_options": {"model": str(build_tiny_model(tmp / "tiny_model"))}}
        model = "tiny"
    except ImportError:  # onnx missing: colours only, vectors not exercised
        pass
    lk.create_collection("fashion", "fashion", settings=settings)
    lk.close()
    env = dict(os.environ)
    env.pop("VISIONLAKE_CRASH_AT", None)
    t0 = time.perf_counter()
    done_kills = at_points = 0
    for k in range(kills):
        col = rng.choice(["plain", "fashion"])
        run_env = dict(env)
        if k % 2:  # chunk points recur per chunk; the others once or twice per run
            point = rng.choice(INGEST_POINTS)
            run_env["VISIONLAKE_CRASH_AT"] = f"{point}:{rng.randint(1, 4) if '.chunk.' in point else 1}"
        proc = subprocess.Popen(_ingest_cmd(lake, srcs[col], col, workers), env=run_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        if "VISIONLAKE_CRASH_AT" in run_env:
            proc.wait()
            if proc.returncode == -signal.SIGKILL:
                done_kills += 1
                at_points += 1
            continue
        time.sleep(rng.uniform(1.0, 4.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            done_kills += 1
        proc.wait()
    kill_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    for col in ("plain", "fashion"):
        r = subprocess.run(_ingest_cmd(lake, srcs[col], col, workers), env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"recovery ingest failed: {r.stderr[-500:]}")
    rep = check_lake(lake)
    recover_s = time.perf_counter() - t1
    return {"rounds": kills, "kills": done_kills, "kills_at_crash_points": at_points,
            "kills_at_random_moments": done_kills - at_points,
            **_losses(lake, expected), "check_ok": rep["ok"], "check_problems": rep["problems"][:5],
            "images_per_collection": images, "fashion_model": model, "workers": workers,
            "kill_phase_s": round(kill_s, 2), "recover_s": round(recover_s, 2), "seed": seed}


def _losses(root: Path, expected: dict[str, dict[str, str]]) -> dict[str, int]:
    from sqlalchemy import func, select

    from visionlake.catalog.models import Image, SourcePath
    from visionlake.fashion.resync import fashion_catalog_ids
    from visionlake.index.faiss_index import FaissIndex
    from visionlake.lake import Lake

    lk = Lake(root, create=False)
    out = {"images_lost": 0, "vectors_lost": 0, "vectors_extra": 0, "duplicates": 0}
    try:
        for name, want in expected.items():
            col = lk.collection(name)
            with lk.session() as s:
                have = set(s.scalars(select(Image.sha256).where(Image.collection_id == col.id)).all())
                n_paths = s.scalar(select(func.count(SourcePath.id)).where(SourcePath.collection_id == col.id))
                n_distinct = s.scalar(select(func.count(func.distinct(SourcePath.path)))
                                      .where(SourcePath.collection_id == col.id))
                n_images = s.scalar(select(func.count(Image.id)).where(Image.collection_id == col.id))
            out["images_lost"] += len(set(want) - have)
            out["duplicates"] += (n_paths - n_distinct) + (n_images - len(have))
            if name == "fashion":
                stored = fashion_catalog_ids(lk, col.id)
                folder = lk.collection_dir(name) / "index" / "fashion"
                saved = set(FaissIndex(folder, dim=32).ids().tolist()) if (folder / "index.json").exists() else set()
                out["vectors_lost"] += len(stored - saved)
                out["vectors_extra"] += len(saved - stored)
                if settings_model(lk, name):
                    out["vectors_lost"] += len(have) - len(stored)  # an image without its embedding
    finally:
        lk.close()
    return out


def settings_model(lk: Any, name: str) -> bool:
    """True when the fashion collection has a tagger model (then every image must have a vector)."""
    return bool((lk.collection(name).settings or {}).get("tagger_options", {}).get("model"))
