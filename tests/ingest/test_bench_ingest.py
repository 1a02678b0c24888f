"""``visionlake bench ingest`` prints the documented JSON keys with plausible values."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image


def test_bench_ingest_prints_throughput_and_peak_rss(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(60):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((96, 96)).save(tmp_path / f"{i}.jpg")
    out = subprocess.run([sys.executable, "-m", "visionlake", "bench", "ingest", "--data", str(tmp_path), "--json",
                          "--workers", "2"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["images"] == 60 and data["ingested"] == 60
    assert data["images_per_s"] > 0
    assert 20 < data["peak_rss_mb"] < 4000  # the sum over the process tree, in MB
