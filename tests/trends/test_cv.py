"""Rolling-origin CV: windows stay inside the training part, choices follow CV scores, intervals cover."""

from __future__ import annotations

import numpy as np
import pytest

from visionlake.trends.auto import POOL, AutoForecaster
from visionlake.trends.cv import conformal_quantiles, cv_coverage, plan_cutoffs, run_cv
from visionlake.trends.forecast import PanelModel, RecentMean, SeasonalNaive, make_model


def panel(n: int = 12, T: int = 120, season: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    return np.array([0.3 + 0.1 * np.sin(2 * np.pi * t / season + i) + 0.03 * rng.standard_normal(T)
                     for i in range(n)])


def test_plan_keeps_windows_inside_history() -> None:
    plan = plan_cutoffs(209, 52, 3, 52)
    assert plan is not None and plan.h == 52 and plan.cutoffs == (157, 131, 105)
    assert all(c + plan.h <= 209 for c in plan.cutoffs)
    short = plan_cutoffs(10, 12, 3, 52)
    assert short is not None and short.h < 12 and all(c + short.h <= 10 and c >= 4 for c in short.cutoffs)
    assert plan_cutoffs(3, 5, 3, 12) is None


class Spy(SeasonalNaive):
    seen: list[int] = []

    def fit(self, Y: np.ndarray, X: np.ndarray | None = None) -> PanelModel:
        Spy.seen.append(np.atleast_2d(Y).shape[1])
        return super().fit(Y, X)


def test_cv_never_fits_on_the_window_it_scores() -> None:
    Y = panel(T=60)
    plan = plan_cutoffs(48, 6, 3, 12)  # a training part of 48 periods; 12 more are the "test"
    Spy.seen = []
    res = run_cv({"spy": lambda: Spy(season=12)}, Y[:, :48], None, plan, 12)
    assert Spy.seen == list(plan.cutoffs) and max(Spy.seen) <= 48 - 6
    assert len(res.forecasts["spy"]) == 3 and res.forecasts["spy"][0].shape == (12, 6)


def test_conformal_intervals_cover_at_nominal_rate() -> None:
    Y = panel(n=40, T=150)
    plan = plan_cutoffs(150, 12, 6, 12, step=6)
    res = run_cv({"naive": lambda: SeasonalNaive(season=12), "level": lambda: RecentMean(season=12)}, Y, None,
                 plan, 12)
    q = conformal_quantiles(res.scaled_errors("naive"), (80, 95))
    assert np.all(np.diff(q[80]) >= 0) and np.all(q[95] >= q[80])
    cov = cv_coverage(res, "naive", (80, 95))
    assert abs(cov[80] - 0.80) < 0.07 and abs(cov[95] - 0.95) < 0.05


def test_default_is_the_cv_winner_and_beats_seasonal_naive() -> None:
    Y = panel(n=6, T=60)
    m = AutoForecaster(season=12, pool=("decomp", "mean(global,decomp)", "mean(global,decomp,level)"))
    pred = m.fit(Y).predict(12)
    assert m.choice == min(m.cv_table, key=m.cv_table.get)
    assert set(m.cv_table) == set(m.pool) and m.choice in POOL
    assert m.cv is not None
    naive = run_cv({"seasonal_naive": lambda: SeasonalNaive(season=12)}, Y, None, m.cv.plan, 12)
    assert m.cv_table[m.choice] < naive.mase("seasonal_naive")
    assert np.isfinite(pred["lo-95"]).all() and (pred["lo-95"] <= pred["lo-80"]).all()
    assert (pred["hi-80"] <= pred["hi-95"]).all()


@pytest.mark.parametrize("name", ["default", "blend", "decomp", "seasonal_naive", "theta", "mstl"])
def test_every_model_gives_finite_intervals_on_two_periods(name: str) -> None:
    p = make_model(name, 12, bounds=(0.0, 1.0)).fit(np.array([[0.2, 0.3], [0.0, 0.0]])).predict(12)
    for k in ("mean", "lo-80", "hi-80", "lo-95", "hi-95"):
        assert np.isfinite(p[k]).all(), (name, k)
    assert (p["lo-95"] < p["hi-95"])[0].all()  # a real interval, not a point
