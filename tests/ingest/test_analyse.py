"""``visionlake analyse``: re-run analysers over catalog images; missing files; kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionlake.errors import BadInput
from visionlake.ingest import ingest
from visionlake.ingest.analyse import analyse
from visionlake.lake import Lake

HERE = Path(__file__).parent
COUNTING = "analyse_helpers:CountingAnalyser"


@pytest.fixture(autouse=True)
def _helpers_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))


def _corpus(root: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = root / f"img_{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).resize((24, 24)).save(p)
        out.append(p)
    return out


def _lake_with(tmp_path: Path, n: int) -> tuple[Lake, list[Path]]:
    files = _corpus(tmp_path / "src", n)
    lk = Lake(tmp_path / "lake")
    lk.create_collection("c", "plain")
    ingest(lk, tmp_path / "src", "c", workers=0)
    return lk, files


def _counts(lk: Lake) -> list[int]:
    return [int((im.meta or {}).get("analysed", 0)) for im in lk.images("c")]


def test_analyse_runs_every_image_once_and_reports_missing_files(tmp_path):
    lk, files = _lake_with(tmp_path, 40)
    files[3].unlink()
    files[17].write_bytes(b"changed content")
    rep = analyse(lk, "c", analysers=[COUNTING], workers=0)
    assert rep["images"] == 40 and rep["analysed"] == 38 and rep["missing"] == 2
    details = " ".join(p["detail"] for p in rep["problems"])
    assert "unreadable" in details or "not_a_file" in details
    assert "content changed" in details
    assert sorted(_counts(lk)) == [0, 0] + [1] * 38
    # a finished run is not resumed: the next analyse re-runs every image that can be read
    rep2 = analyse(lk, "c", analysers=[COUNTING], workers=2)
    assert rep2["analysed"] == 38 and not rep2["resumed"]
    assert sorted(_counts(lk)) == [0, 0] + [2] * 38
    lk.close()


def test_analyse_refuses_unknown_analysers(tmp_path):
    lk, _ = _lake_with(tmp_path, 2)
    with pytest.raises(BadInput, match="unknown analyser"):
        analyse(lk, "c", analysers=["nope"])
    lk.close()


def _done(db: Path) -> int:
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            return con.execute("select count(*) from analysis_done").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _cli(lake: Path) -> subprocess.Popen:
    env = {**os.environ, "VL_TEST_SLEEP": "0.03",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", ""), os.getcwd()])}
    cmd = [sys.executable, "-m", "visionlake", "--lake", str(lake), "analyse", "-c", "c", "--analyser", COUNTING,
           "--workers", "2", "--json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env)


@pytest.mark.heavy
def test_analyse_after_kill_9_finishes_with_every_image_analysed_exactly_once(tmp_path):
    n = 240
    lk, _ = _lake_with(tmp_path, n)
    lk.close()
    db = tmp_path / "lake" / "catalog.sqlite"
    proc = _cli(tmp_path / "lake")
    deadline = time.time() + 120
    while time.time() < deadline and _done(db) < 48:
        if proc.poll() is not None:
            raise AssertionError(f"analyse ended before it could be killed: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _done(db)
    assert 0 < partial < n, f"the kill must land mid-run ({partial} of {n} done)"

    proc = _cli(tmp_path / "lake")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    rep = json.loads(out)
    assert rep["resumed"] and rep["already_done"] >= partial and rep["analysed"] + rep["already_done"] == n
    lk = Lake(tmp_path / "lake")
    assert _counts(lk) == [1] * n, "every image's result committed exactly once"
    lk.close()
