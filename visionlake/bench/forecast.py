"""``visionlake bench forecast``: rolling-origin CV inside the training part, then one test forecast.

Input: a HERMES F1 folder (its protocol: train 209 weeks, forecast 52 from one origin, weak signal), a
StreetStyle-27K or fashion_products folder (attribute shares built by :mod:`visionlake.trends.datasets`),
or any wide CSV (first column the date, one column per series) cut at ``--train-end``.

Two scores, kept apart on purpose:

* ``cv_mase`` / ``cv_table``: every candidate (reference models, the previous blend, the default's
  pool) forecast from ``--cv-windows`` cutoffs *inside* the training part. The default is the pool's CV
  winner; this is the only number any choice is made on.
* ``mase`` / ``coverage_80`` / ``coverage_95``: the chosen default refitted on the whole training part and
  scored once on the test part (HERMES scale: mean absolute seasonal difference over all training rows).

Forecasts are written as wide CSVs under ``--out`` so they can be scored independently.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from visionlake.errors import BadInput
from visionlake.trends.datasets import load_set
from visionlake.trends.forecast import REFERENCE_MODELS as REFERENCES


def weak_signal_share(main: np.ndarray, ff: np.ndarray) -> np.ndarray:
    """HERMES' use of the influencer signal: ``ff / (main + ff)``, 0.5 where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ff / (main + ff)
    return np.where(np.isfinite(r), r, 0.5)


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def run_benchmark(data: Path, out: Path | None = None, train_end: str | None = None,
                  horizon: int | None = None, season: int | None = None,
                  baselines: tuple[str, ...] = ("seasonal_naive",), signal: Path | None = None,
                  model: str = "default", cv_windows: int = 3,
                  cv_models: tuple[str, ...] = REFERENCES) -> dict:
    """CV table of every candidate, the CV winner refitted, test MASE and interval coverage."""
    from visionlake.trends.auto import POOL, AutoForecaster, blend_cv, member_factories
    from visionlake.trends.cv import clip, cv_coverage, plan_cutoffs, run_cv
    from visionlake.trends.forecast import MODEL_NAMES, fill_gaps, make_model, mase

    unknown = [m for m in (*baselines, *cv_models) if m not in MODEL_NAMES or m == "default"]
    if unknown:
        raise BadInput(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES[1:])}")
    if model not in MODEL_NAMES:
        raise BadInput(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    bs = load_set(data, train_end, horizon, season, signal)
    df, n_train, h, s = bs.wide, bs.n_train, bs.horizon, bs.season
    raw = df.to_numpy(dtype=float).T
    train = fill_gaps(raw[:, :n_train])
    test = raw[:, n_train : n_train + h]
    bounds = (0.0, 1.0) if bs.shares else None
    X = None
    if bs.signal is not None and bs.signal.shape == df.shape:
        X = weak_signal_share(raw, bs.signal.to_numpy(dtype=float).T)[:, :n_train]  # training part only
    freq = pd.infer_freq(df.index[: min(len(df), 20)]) or "W-MON"
    future = pd.date_range(df.index[n_train - 1], periods=h + 1, freq=freq)[1:]
    complete = test.shape[1] == h

    def score(fc: np.ndarray) -> float | None:
        return float(np.nanmean(mase(train, test, fc, s))) if complete else None

    def write(name: str, fc: np.ndarray) -> None:
        if out is None:
            return
        out.mkdir(parents=True, exist_ok=True)
        wide = pd.DataFrame(fc.T, columns=df.columns, index=future.strftime("%Y-%m-%d"))
        wide.index.name = "ds"
        wide.to_csv(out / f"{name}.csv")

    result: dict = {"data": str(data), "set": bs.name, "n_series": int(raw.shape[0]), "train_rows": int(n_train),
                    "horizon": int(h), "season": s, "shares": bool(bounds), "weak_signal": X is not None}
    # 1. rolling-origin CV inside the training part: members, references, the previous blend, the pool
    t0 = time.perf_counter()
    plan = plan_cutoffs(n_train, h, cv_windows, s)
    cv = None
    if plan is not None:
        members = tuple(dict.fromkeys(m for c in POOL.values() for m in c[1]))
        refs = tuple(m for m in cv_models if m not in members and m != "blend")
        cv = run_cv(member_factories(s, members + refs), train, X, plan, s, bounds)
        if "blend" in cv_models:
            t1 = time.perf_counter()
            cv.forecasts["blend"] = [clip(f, bounds) for f in blend_cv(cv, train, X)]
            cv.seconds["blend"] = round(time.perf_counter() - t1 + sum(cv.seconds[m] for m in
                                                                       ("global", "mstl", "decomp")), 2)
        result["cv"] = {"windows": len(plan.cutoffs), "horizon": plan.h,
                        "cutoffs": [str(df.index[c - 1].date()) for c in plan.cutoffs]}
    # 2. the default: the pool's CV winner, refitted on the whole training part
    m = make_model(model, s, bounds)
    if isinstance(m, AutoForecaster) and cv is not None:
        m.use_cv(cv)
    m.fit(train, X)
    pred = m.predict(h, level=(80, 95))
    pred = {k: clip(v, bounds) for k, v in pred.items()}
    wall = time.perf_counter() - t0
    fc = pred["mean"]
    write("forecast", fc)
    result.update(model=model, choice=getattr(m, "choice", model) or model, mase=_r(score(fc), 12))
    if complete:
        ok = np.isfinite(test)
        for lv in (80, 95):
            inside = (test >= pred[f"lo-{lv}"] - 1e-12) & (test <= pred[f"hi-{lv}"] + 1e-12)
            result[f"coverage_{lv}"] = _r(float(inside[ok].mean()))
    else:
        result.update(coverage_80=None, coverage_95=None, test_reason="the table has fewer rows than the horizon "
                      "after --train-end: nothing to score")
    if cv is not None:
        if isinstance(m, AutoForecaster):
            for c in POOL:
                if c not in cv.forecasts:
                    cv.add_combination(c, POOL[c][1], POOL[c][0])
        table = cv.table()
        chosen = getattr(m, "choice", "") or model
        result["cv_mase"] = _r(table.get(chosen))
        cov = cv_coverage(cv, chosen, (80, 95), bounds) if chosen in cv.forecasts else {}
        result["cv_coverage_80"], result["cv_coverage_95"] = _r(cov.get(80)), _r(cov.get(95))
        sn = table.get("seasonal_naive")
        if sn and result["cv_mase"] is not None:
            result["cv_gain_vs_seasonal_naive"] = _r(1 - result["cv_mase"] / sn)
        result["cv_table"] = [{"candidate": k, "cv_mase": _r(v), "in_pool": k in POOL, "default": k == chosen,
                               "seconds": cv.seconds.get(k)} for k, v in table.items()]
    else:
        result.update(cv_mase=None, cv_reason="history too short for a CV window inside the training part")
    result["wall_s"] = round(wall, 2)
    base_scores: dict[str, float | None] = {}
    for name in baselines:
        bfc = clip(make_model(name, s).fit(train, X if name == "global" else None).predict(h, level=())["mean"],
                   bounds)
        base_scores[name] = _r(score(bfc), 6)
        write(name, bfc)
    result["baselines"] = base_scores
    result["total_wall_s"] = round(time.perf_counter() - t0, 2)
    if out is not None:
        result["out"] = str(out)
    return result
