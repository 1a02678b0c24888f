"""Forecast models: shapes, intervals, short and degenerate inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from visionlake.errors import BadInput
from visionlake.trends.forecast import (
    GlobalBoosted,
    SeasonalDecomp,
    SeasonalNaive,
    ValidatedEnsemble,
    greedy_weights,
    make_model,
    mase,
)
from visionlake.trends.pipeline import forecast_series


def panel(n: int = 12, T: int = 150, season: int = 26, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    base = 1 + 0.5 * np.sin(2 * np.pi * t / season)
    return np.array([(1 + i / n) * base + 0.002 * i * t + 0.1 * rng.standard_normal(T) for i in range(n)])


def test_mase_matches_definition() -> None:
    train = np.array([[1.0, 2, 3, 4, 5, 6]])
    test = np.array([[7.0, 8]])
    fc = np.array([[6.0, 6]])
    # seasonal differences with s=2: all equal 2 -> scale 2; errors 1 and 2 -> 1.5 / 2
    assert mase(train, test, fc, season=2)[0] == pytest.approx(0.75)


def test_models_beat_seasonal_naive_and_give_intervals() -> None:
    Y = panel()
    tr, te = Y[:, :124], Y[:, 124:]
    base = np.mean(mase(tr, te, SeasonalNaive(season=26).fit(tr).point(26), 26))
    ens = ValidatedEnsemble(season=26)
    for m in (SeasonalDecomp(season=26), GlobalBoosted(season=26, max_iter=80), ens):
        p = m.fit(tr).predict(26, level=(80, 95))
        assert p["mean"].shape == (12, 26)
        assert np.all(p["lo-95"] <= p["lo-80"] + 1e-12) and np.all(p["hi-80"] <= p["hi-95"] + 1e-12)
        assert np.mean(mase(tr, te, p["mean"], 26)) < base * 1.05, m.name
    assert sum(ens.weights.values()) == pytest.approx(1.0)
    assert "ensemble" in ens.validation


def test_greedy_weights_prefers_better_member() -> None:
    rng = np.random.default_rng(1)
    train = rng.random((5, 60))
    actual = rng.random((5, 10))
    w = greedy_weights({"good": actual + 0.01, "bad": actual + 1.0}, train, actual, season=12)
    assert w.get("good", 0) > 0.8


@pytest.mark.parametrize("name", ["default", "global", "decomp", "seasonal_naive"])
def test_short_and_zero_series(name: str) -> None:
    Y = np.zeros((3, 10))
    Y[1] = np.linspace(0, 1, 10)
    p = make_model(name, 52).fit(Y).predict(4)
    assert p["mean"].shape == (3, 4) and np.all(np.isfinite(p["mean"]))
    assert np.allclose(p["mean"][0], 0.0)


def test_single_period_is_a_clear_error() -> None:
    with pytest.raises(BadInput, match="two periods"):
        make_model("default", 52).fit(np.ones((2, 1)))
    with pytest.raises(BadInput):
        make_model("prophet", 52)


def test_forecast_series_tidy_and_clipped(looks: pd.DataFrame) -> None:
    from visionlake.trends.observations import compute_series, long_observations

    s = compute_series(long_observations(looks, "created", ["fabric"], [], "look"), by="month")
    fc = forecast_series(s, 6)
    assert set(fc["unique_id"]) == set(s["unique_id"])
    assert {"mean", "lo-80", "hi-80", "lo-95", "hi-95"} <= set(fc.columns)
    assert fc["mean"].between(0, 1).all() and (fc["lo-95"] >= 0).all() and (fc["hi-95"] <= 1).all()
    one = s[s["ds"] == s["ds"].min()]
    one.attrs.update(s.attrs)
    with pytest.raises(BadInput, match="one month"):
        forecast_series(one, 3)
