"""Property tests: whatever short, zero, gappy or shifted share curves come in, forecasts stay sane."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visionlake.trends.jsonsafe import clean, records
from visionlake.trends.pipeline import forecast_series
from visionlake.trends.words import describe


@st.composite
def share_panels(draw) -> pd.DataFrame:
    """A tidy series table as compute_series makes it: 1-3 series, 2-30 months, zeros, gaps and shifts."""
    T = draw(st.integers(2, 30))
    n = draw(st.integers(1, 3))
    rows = []
    for i in range(n):
        kind = draw(st.sampled_from(["noise", "zeros", "gappy", "shift", "ones"]))
        rng = np.random.default_rng(draw(st.integers(0, 10_000)))
        y = np.clip(0.3 + 0.1 * rng.standard_normal(T), 0, 1)
        if kind == "zeros":
            y[:] = 0.0
        elif kind == "ones":
            y[:] = 1.0
        elif kind == "shift":
            y[T // 2 :] = np.clip(y[T // 2 :] + 0.5, 0, 1)
        looks = rng.integers(1, 40, T)
        if kind == "gappy":
            looks[rng.random(T) < 0.4] = 0
        for t in range(T):
            n_t = int(looks[t])
            rows.append({"unique_id": f"colour=v{i}", "attribute": "colour", "value": f"v{i}",
                         "ds": pd.Timestamp("2020-01-01") + pd.DateOffset(months=t),
                         "y": float(y[t]) if n_t else np.nan, "count": float(round(y[t] * n_t)), "n": n_t,
                         "lo": np.nan, "hi": np.nan, "low_support": n_t < 10})
    s = pd.DataFrame(rows)
    s.attrs.update(by="month", segments=[])
    return s


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(share_panels(), st.integers(1, 12))
def test_default_forecast_is_sane(series: pd.DataFrame, horizon: int) -> None:
    fc = forecast_series(series, horizon, "default", "month")
    vals = fc[["mean", "lo-80", "hi-80", "lo-95", "hi-95"]].to_numpy()
    assert np.isfinite(vals).all()
    assert (vals >= 0).all() and (vals <= 1).all()
    assert (fc["lo-95"] <= fc["lo-80"] + 1e-12).all() and (fc["lo-80"] <= fc["mean"] + 1e-12).all()
    assert (fc["mean"] <= fc["hi-80"] + 1e-12).all() and (fc["hi-80"] <= fc["hi-95"] + 1e-12).all()
    text = json.dumps(clean({"rows": records(fc), "attrs": dict(fc.attrs)}), allow_nan=False)
    assert "NaN" not in text
    sentence = describe({"unique_id": "colour=v0", "value": "v0", "attribute": "colour", "label": "stable",
                         "last_share": float("nan"), "trend_p": float("nan")}, fc[fc["unique_id"] == "colour=v0"])
    assert "nan" not in sentence.lower()
