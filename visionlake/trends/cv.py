"""Rolling-origin cross-validation inside the training part, and conformal intervals from it.

Why this module exists: every choice a forecaster makes (which members, how to combine them, how wide
the intervals are) must be made on data the test period cannot leak into. statsforecast's
``cross_validation`` does this with several cutoffs inside the history; this is the same protocol on
panels ``(n_series, T)``: for each cutoff ``c`` a model is fitted on ``Y[:, :c]`` and scored on
``Y[:, c:c+h]`` with the MASE scale of ``Y[:, :c]`` (the HERMES protocol applied to each window).

The absolute errors of those forecasts, divided by each series' scale, are exchangeable across series
and windows at a given horizon step, so their quantiles give split-conformal intervals: no
distributional assumption, and a coverage that can itself be checked by leaving one window out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Levels = Sequence[int]


@dataclass(frozen=True)
class CVPlan:
    """Cutoffs (number of training periods before each window, newest first) and the window length."""

    cutoffs: tuple[int, ...]
    h: int


def plan_cutoffs(T: int, h: int, windows: int = 3, season: int = 1, step: int | None = None) -> CVPlan | None:
    """Up to ``windows`` cutoffs, ``step`` apart (default half the horizon), leaving a usable history.

    The newest window ends at the last training period. The oldest keeps at least one season of history
    (at least 4 periods, at most half the data), so that seasonal members have something to repeat. When
    the history is too short for the full horizon, windows are shortened (intervals beyond are widened
    later); ``None`` when not even a one-step window fits.
    """
    if T < 5 or windows < 1:
        return None
    min_train = max(4, min(season, T // 2))
    hv = min(h, T - min_train)
    if hv < 1:
        return None
    step = step or max(1, hv // 2)
    cutoffs = [T - hv - k * step for k in range(windows)]
    cutoffs = [c for c in cutoffs if c >= min_train]
    if not cutoffs:
        return None
    return CVPlan(tuple(cutoffs), hv)


def safe_scale(train: np.ndarray, season: int) -> np.ndarray:
    """Per-series MASE scale of ``train`` (seasonal, else first differences), else its std, else 1."""
    from visionlake.trends.forecast import _safe_scale

    return _safe_scale(train, season)


@dataclass
class CVResult:
    """Forecasts of every candidate in every window, with the truths and the training parts' scales."""

    plan: CVPlan
    season: int
    actuals: list[np.ndarray]
    trains: list[np.ndarray]
    forecasts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def mase(self, name: str) -> float:
        """Mean over windows of the mean MASE over series (NaN-free series only)."""
        import warnings

        from visionlake.trends.forecast import mase

        with warnings.catch_warnings():  # a window whose series all have zero scale scores nothing
            warnings.simplefilter("ignore", RuntimeWarning)
            per = [np.nanmean(mase(tr, act, fc, self.season)) for tr, act, fc in
                   zip(self.trains, self.actuals, self.forecasts[name], strict=True)]
        per = [p for p in per if np.isfinite(p)]
        return float(np.mean(per)) if per else float("inf")

    def scaled_errors(self, name: str) -> np.ndarray:
        """``|y - yhat| / scale`` per (window, series, step): the conformity scores."""
        out = []
        for tr, act, fc in zip(self.trains, self.actuals, self.forecasts[name], strict=True):
            sc = safe_scale(tr, self.season)
            out.append(np.abs(act - fc) / sc[:, None])
        return np.stack(out)

    def table(self) -> dict[str, float]:
        """CV MASE of every candidate, best first."""
        scores = {k: self.mase(k) for k in self.forecasts}
        return dict(sorted(scores.items(), key=lambda kv: kv[1]))

    def add_combination(self, name: str, members: Sequence[str], how: str = "mean") -> None:
        """A combination of candidates already in the table (no refit: it combines their forecasts)."""
        agg = np.nanmedian if how == "median" else np.nanmean
        self.forecasts[name] = [agg(np.stack([self.forecasts[m][k] for m in members]), axis=0)
                                for k in range(len(self.plan.cutoffs))]
        self.seconds[name] = sum(self.seconds.get(m, 0.0) for m in members)


def run_cv(factories: dict[str, Callable[[], object]], Y: np.ndarray, X: np.ndarray | None, plan: CVPlan,
           season: int, bounds: tuple[float, float] | None = None) -> CVResult:
    """Fit each candidate at every cutoff and keep its forecasts (clipped to ``bounds`` if given)."""
    import time

    res = CVResult(plan, season, [Y[:, c : c + plan.h] for c in plan.cutoffs],
                   [Y[:, :c] for c in plan.cutoffs])
    for name, make in factories.items():
        t0 = time.perf_counter()
        fcs = []
        for c in plan.cutoffs:
            m = make()
            fc = m.fit(Y[:, :c], None if X is None else X[:, :c]).point(plan.h)  # type: ignore[attr-defined]
            fcs.append(clip(fc, bounds))
        res.forecasts[name] = fcs
        res.seconds[name] = round(time.perf_counter() - t0, 2)
    return res


def clip(a: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    """``a`` within ``bounds`` (shares never leave [0, 1]); NaN-free."""
    a = np.nan_to_num(np.asarray(a, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    return a if bounds is None else np.clip(a, bounds[0], bounds[1])


def conformal_quantiles(err: np.ndarray, levels: Levels) -> dict[int, np.ndarray]:
    """Per horizon step, the ``level`` quantile of pooled scaled errors, never shrinking with the step.

    The finite-sample correction ``ceil((m + 1) level) / m`` of split conformal prediction keeps the
    coverage at or above nominal when few errors are pooled. Widths are made non-decreasing by isotonic
    regression (pooling adjacent violators), not a running maximum: on noise-dominated series the
    per-step quantiles are flat and a running maximum would ratchet every later step up to the noisiest
    one (StreetStyle's 80% band covered 90% that way).
    """
    flat = err.transpose(2, 0, 1).reshape(err.shape[2], -1)  # (h, windows * series)
    out = {}
    for lv in levels:
        qs = []
        for row in flat:
            row = row[np.isfinite(row)]
            if len(row) == 0:
                qs.append(np.nan)
                continue
            q = min(1.0, np.ceil((len(row) + 1) * lv / 100.0) / len(row))
            qs.append(float(np.quantile(row, q)))
        arr = np.array(qs)
        if np.isnan(arr).all():
            arr = np.zeros_like(arr)
        arr = np.where(np.isnan(arr), np.nanmax(arr), arr)
        out[lv] = _isotonic(arr)
    return out


def _isotonic(q: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit of ``q`` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in q.tolist():
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2), (m1, w1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return np.concatenate([np.full(int(w), m) for m, w in blocks])


def cv_coverage(res: CVResult, name: str, levels: Levels = (80, 95),
                bounds: tuple[float, float] | None = None) -> dict[int, float | None]:
    """Coverage of conformal intervals, each window scored with quantiles from the *other* windows.

    With a single window there is nothing to leave out, so coverage is unknown (None), never guessed.
    """
    K = len(res.plan.cutoffs)
    if K < 2:
        return dict.fromkeys(levels)
    err = res.scaled_errors(name)
    hits = {lv: [] for lv in levels}
    for k in range(K):
        q = conformal_quantiles(np.delete(err, k, axis=0), levels)
        sc = safe_scale(res.trains[k], res.season)
        fc, act = res.forecasts[name][k], res.actuals[k]
        for lv in levels:
            w = sc[:, None] * q[lv][None, :]
            lo, hi = clip(fc - w, bounds), clip(fc + w, bounds)
            ok = np.isfinite(act)
            hits[lv].append(((act >= lo - 1e-12) & (act <= hi + 1e-12))[ok])
    return {lv: float(np.concatenate(v).mean()) if sum(map(len, v)) else None for lv, v in hits.items()}
