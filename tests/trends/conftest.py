"""Shared fixtures of the trend tests: a small synthetic observation table and the shared-data path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from visionlake.config import shared_data_dir


@pytest.fixture
def data_dir() -> Path:
    """../shared/data (or VISIONLAKE_DATA); skip the test clearly when it is absent."""
    d = shared_data_dir()
    if not d.exists():
        pytest.skip(f"shared data folder {d} not found: set VISIONLAKE_DATA")
    return d


def make_looks(n_months: int = 36, per_month: int = 60, seed: int = 0) -> pd.DataFrame:
    """Wide table, one row per look: 'satin' rises, 'wool' is seasonal, 'denim' falls."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_months):
        month = pd.Timestamp("2020-01-01") + pd.DateOffset(months=m)
        p_rise = 0.05 + 0.5 * m / n_months
        p_fall = 0.6 - 0.5 * m / n_months
        p_wool = 0.3 + 0.25 * np.cos(2 * np.pi * m / 12)
        for k in range(per_month):
            r = rng.random()
            fabric = "satin" if r < p_rise else ("denim" if r < p_rise + p_fall * (1 - p_rise) else "cotton")
            rows.append({
                "look": f"{m}-{k}",
                "created": (month + pd.Timedelta(days=int(rng.integers(0, 27)))).strftime("%Y-%m-%d"),
                "city": ["Paris", "Milan"][k % 2],
                "fabric": fabric,
                "knit": "wool" if rng.random() < p_wool else "none",
                "length": "midi" if fabric == "satin" and rng.random() < 0.8 else "mini",
            })
    return pd.DataFrame(rows)


@pytest.fixture
def looks() -> pd.DataFrame:
    return make_looks()
