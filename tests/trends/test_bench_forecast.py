"""``visionlake bench forecast`` end to end on HERMES F1 (the acceptance numbers), plus a small wide CSV."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def bench(args: list[str], timeout: int = 300) -> dict:
    r = subprocess.run([sys.executable, "-m", "visionlake", "bench", "forecast", *args, "--json"],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_wide_csv_with_train_end(tmp_path: Path) -> None:
    t = np.arange(160)
    rng = np.random.default_rng(0)
    data = {f"s{i}": 1 + 0.4 * np.sin(2 * np.pi * t / 52 + i) + 0.05 * rng.standard_normal(160) for i in range(6)}
    df = pd.DataFrame(data, index=pd.date_range("2020-01-06", periods=160, freq="W-MON").strftime("%Y-%m-%d"))
    path = tmp_path / "wide.csv"
    df.to_csv(path)
    res = bench(["--data", str(path), "--train-end", df.index[139], "--horizon", "20", "--baselines",
                 "seasonal_naive", "--out", str(tmp_path / "out")])
    assert res["train_rows"] == 140 and res["horizon"] == 20
    assert res["mase"] is not None and res["mase"] < res["baselines"]["seasonal_naive"] * 1.1
    fc = pd.read_csv(tmp_path / "out" / "forecast.csv")
    assert list(fc.columns[1:]) == list(df.columns) and len(fc) == 20
    assert fc.iloc[0, 0] == df.index[140]


@pytest.mark.heavy  # benchmark-sized: the full HERMES F1 benchmark (100 series), minutes on a loaded machine
@pytest.mark.slow
@pytest.mark.shared_data
def test_hermes_f1_beats_published(data_dir: Path, tmp_path: Path) -> None:
    folder = data_dir / "forecast" / "hermes_f1"
    if not folder.exists():
        pytest.skip(f"{folder} not found: set VISIONLAKE_DATA")
    # CI runs the default forecaster and seasonal naive only; the full baseline set is in the benchmark
    res = bench(["--data", str(folder), "--baselines", "seasonal_naive", "--out", str(tmp_path)])
    assert res["n_series"] == 100 and res["train_rows"] == 209 and res["horizon"] == 52
    assert res["baselines"]["seasonal_naive"] == pytest.approx(0.8763, abs=1e-4)
    assert res["mase"] < 0.7368, res
    assert res["wall_s"] < 120
    # score the written CSV independently, exactly as PROTOCOL.md says
    main = pd.read_csv(folder / "f1_main_100_sequences.csv", index_col=0)
    fc = pd.read_csv(tmp_path / "forecast.csv", index_col=0)
    assert list(fc.columns) == list(main.columns) and list(fc.index) == list(main.index[209:])
    hist, test = main.to_numpy()[:209], main.to_numpy()[209:]
    scale = np.mean(np.abs(hist[52:] - hist[:-52]), axis=0)
    score = np.mean(np.mean(np.abs(test - fc.to_numpy()), axis=0) / scale)
    assert score == pytest.approx(res["mase"], rel=1e-9)
