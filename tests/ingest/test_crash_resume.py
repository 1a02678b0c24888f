"""Acceptance 3 of the foundation: SIGKILL in the middle of a run, rerun, nothing lost or doubled."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

# Big enough that the kill lands mid-run (commits come every 16 photos) and the resume filter spans
# more than one of its 512-path batches; the behaviour does not depend on more (it was 2,400 + 100).
N_UNIQUE = 800
N_DUPLICATES = 50
KILL_AFTER = 200


def _make_corpus(root: Path) -> dict[str, str]:
    """Small distinct JPEGs in nested folders plus byte-identical copies; returns path -> sha256."""
    rng = np.random.default_rng(0)
    hashes: dict[str, str] = {}
    for i in range(N_UNIQUE):
        folder = root / f"d{i // 500}"
        folder.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        p = folder / f"img_{i:05d}.jpg"
        Image.fromarray(arr).resize((48, 48), Image.Resampling.NEAREST).save(p, quality=90)
        hashes[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    for i in range(N_DUPLICATES):
        src = root / "d0" / f"img_{i:05d}.jpg"
        dst = root / "copies" / f"copy_{i:05d}.jpg"
        dst.parent.mkdir(exist_ok=True)
        dst.write_bytes(src.read_bytes())
        hashes[str(dst)] = hashes[str(src)]
    return hashes


def _run(lake: Path, corpus: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "visionlake", "--lake", str(lake), "ingest", str(corpus), "--collection", "c",
           "--purpose", "plain", "--workers", "2", "--json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _count(db: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_mid_run_then_rerun_gives_every_image_exactly_once(tmp_path):
    corpus = tmp_path / "corpus"
    hashes = _make_corpus(corpus)
    lake = tmp_path / "lake"
    db = lake / "catalog.sqlite"

    proc = _run(lake, corpus)
    deadline = time.time() + 120
    while time.time() < deadline:
        n = _count(db, "select count(*) from source_paths")
        if n >= KILL_AFTER:
            break
        if proc.poll() is not None:
            raise AssertionError(f"ingest ended before it could be killed: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(db, "select count(*) from source_paths")
    assert 0 < partial < len(hashes), f"the kill must land mid-run (recorded {partial} of {len(hashes)})"

    proc = _run(lake, corpus)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()

    con = sqlite3.connect(db)
    paths = con.execute("select path, status, image_id from source_paths").fetchall()
    images = dict(con.execute("select id, sha256 from images").fetchall())
    con.close()

    recorded = [p for p, _, _ in paths]
    assert len(recorded) == len(set(recorded)), "a path was recorded twice"
    assert set(recorded) == set(hashes), "a path is missing from the catalog"
    assert all(status in ("ingested", "duplicate") for _, status, _ in paths)
    stored = list(images.values())
    assert len(stored) == len(set(stored)), "an image was stored twice"
    assert set(stored) == set(hashes.values()), "a unique image is missing"
    assert len(stored) == N_UNIQUE
    for p, _, image_id in paths:
        assert images[image_id] == hashes[p], f"{p} points at the wrong image"
    thumbs = list((lake / "collections" / "c" / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == N_UNIQUE
