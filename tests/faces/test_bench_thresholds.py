"""``visionlake bench thresholds``: the calibration that fills ``faces.thresholds.CALIBRATED``, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_bench_thresholds_refuses_a_folder_without_view1(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "visionlake", "bench", "thresholds", "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "pairsDevTrain.txt" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.heavy
def test_bench_thresholds_on_a_small_view1(lfw_root: Path, tmp_path: Path) -> None:
    """Six people, two photos each, as a View 1 pair folder: impostor pairs are all cross-person pairs and
    the printed thresholds rise as the FAR falls."""
    people = ["Colin_Powell", "Tony_Blair", "George_W_Bush", "Serena_Williams", "Hugo_Chavez", "Jean_Chretien"]
    (tmp_path / "images").mkdir()
    lines = []
    for name in people:
        (tmp_path / "images" / name).mkdir()
        photos = sorted((lfw_root / "images" / name).glob(f"{name}_*.jpg"))[:2]
        if len(photos) < 2:
            pytest.skip(f"LFW copy lacks two photos of {name}")
        for src in photos:
            os.symlink(src, tmp_path / "images" / name / src.name)
        nums = [int(p.stem.rsplit("_", 1)[1]) for p in photos]
        lines.append(f"{name}\t{nums[0]}\t{nums[1]}\n")
    (tmp_path / "pairsDevTrain.txt").write_text("".join(lines[:3]))
    (tmp_path / "pairsDevTest.txt").write_text("".join(lines[3:]))
    r = subprocess.run([sys.executable, "-m", "visionlake", "bench", "thresholds", "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["images"] == 12
    assert out["impostor_pairs"] == 12 * 11 // 2 - 6  # every pair of photos of two different people
    t = out["thresholds"]
    assert float(t["0.01"]) <= float(t["0.001"]) <= float(t["0.0001"]) <= 1.0
