"""``visionlake bench forecast``: MASE of the default forecaster and reference models on wide series.

Input is either the HERMES F1 folder (``f1_main_100_sequences.csv`` + the fashion-forward signal) with
its protocol (train 209 weeks, forecast 52 from one origin), or any wide CSV (first column the date,
one column per series) cut at ``--train-end``. MASE uses the HERMES scale: mean absolute seasonal
difference over *all* training weeks. Forecasts are written as wide CSVs under ``--out`` so they can be
scored independently.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from visionlake.errors import BadInput, NotFound

HERMES_MAIN = "f1_main_100_sequences.csv"
HERMES_FF = "f1_fashion_forward_100_sequences.csv"
HERMES_TRAIN = 209


def _read_wide(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise NotFound(f"no such file: {path}")
    try:
        df = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise BadInput(f"cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    if df.empty or df.shape[1] == 0:
        raise BadInput(f"{path.name} has no series (expected: first column the date, one column per series)")
    idx = pd.to_datetime(pd.Series(df.index.astype(str)), errors="coerce")
    if idx.isna().any():
        raise BadInput(f"the first column of {path.name} must be dates; e.g. {df.index[idx.isna()][0]!r}")
    df.index = pd.DatetimeIndex(idx)
    df = df.apply(pd.to_numeric, errors="coerce")
    return df.sort_index()


def load_benchmark(data: Path, train_end: str | None, horizon: int | None, signal: Path | None
                   ) -> tuple[pd.DataFrame, int, int, pd.DataFrame | None]:
    """(wide table, number of training rows, horizon, optional weak-signal table of the same shape)."""
    ff: pd.DataFrame | None = None
    if data.is_dir():
        main = data / HERMES_MAIN
        if not main.exists():
            raise NotFound(f"{data} has no {HERMES_MAIN}; pass a wide CSV file instead")
        df = _read_wide(main)
        if (data / HERMES_FF).exists():
            ff = _read_wide(data / HERMES_FF)
        n_train = HERMES_TRAIN if train_end is None else int((df.index <= pd.Timestamp(train_end)).sum())
    else:
        df = _read_wide(data)
        if signal is not None:
            ff = _read_wide(signal)
        if train_end is None:
            if horizon is None:
                raise BadInput("give --train-end DATE (last training row, inclusive) or --horizon H")
            n_train = len(df) - horizon
        else:
            n_train = int((df.index <= pd.Timestamp(train_end)).sum())
    h = horizon if horizon is not None else min(52, len(df) - n_train) or 52
    if n_train < 3:
        raise BadInput(f"only {n_train} training rows before --train-end; need more history")
    return df, n_train, h, ff


def weak_signal_share(main: np.ndarray, ff: np.ndarray) -> np.ndarray:
    """HERMES' use of the influencer signal: ``ff / (main + ff)``, 0.5 where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ff / (main + ff)
    return np.where(np.isfinite(r), r, 0.5)


def run_benchmark(data: Path, out: Path | None = None, train_end: str | None = None,
                  horizon: int | None = None, season: int = 52, baselines: tuple[str, ...] = (
                      "seasonal_naive", "ets", "tbats"), signal: Path | None = None,
                  model: str = "default") -> dict:
    """Fit on the training rows, forecast ``horizon`` rows, score MASE where the truth is known."""
    from visionlake.trends.forecast import make_model, mase

    df, n_train, h, ff = load_benchmark(data, train_end, horizon, signal)
    Y = df.to_numpy(dtype=float).T
    if np.isnan(Y[:, :n_train]).any():
        Y = pd.DataFrame(Y.T).interpolate(limit_direction="both").fillna(0).to_numpy().T
    train = Y[:, :n_train]
    test = Y[:, n_train : n_train + h]
    X = None
    if ff is not None and ff.shape == df.shape:
        X = weak_signal_share(Y, ff.to_numpy(dtype=float).T)[:, :n_train]  # training part only
    freq = pd.infer_freq(df.index[: min(len(df), 20)]) or "W-MON"
    future = pd.date_range(df.index[n_train - 1], periods=h + 1, freq=freq)[1:]

    def score(fc: np.ndarray) -> float | None:
        if test.shape[1] < h:
            return None
        return float(np.nanmean(mase(train, test, fc, season)))

    def write(name: str, fc: np.ndarray) -> None:
        if out is None:
            return
        out.mkdir(parents=True, exist_ok=True)
        wide = pd.DataFrame(fc.T, columns=df.columns, index=future.strftime("%Y-%m-%d"))
        wide.index.name = "ds"
        wide.to_csv(out / f"{name}.csv")

    t0 = time.perf_counter()
    m = make_model(model, season)
    m.fit(train, X)
    pred = m.predict(h, level=(80, 95))
    wall = time.perf_counter() - t0
    fc = pred["mean"]
    write("forecast", fc)
    result: dict = {
        "data": str(data),
        "model": model,
        "n_series": int(Y.shape[0]),
        "train_rows": int(n_train),
        "horizon": int(h),
        "season": season,
        "weak_signal": X is not None,
        "mase": score(fc),
        "wall_s": round(wall, 2),
    }
    if test.shape[1] == h:
        inside = (test >= pred["lo-95"]) & (test <= pred["hi-95"])
        result["coverage_95"] = float(inside.mean())
    if hasattr(m, "weights"):
        result["weights"] = getattr(m, "weights", {})
        result["validation_mase"] = getattr(m, "validation", {})
    base_scores: dict[str, float | None] = {}
    base_wall: dict[str, float] = {}
    for name in baselines:
        t1 = time.perf_counter()
        b = make_model(name, season)
        bfc = b.fit(train).predict(h, level=())["mean"]
        base_wall[name] = round(time.perf_counter() - t1, 2)
        base_scores[name] = score(bfc)
        write(name, bfc)
    result["baselines"] = base_scores
    result["baselines_wall_s"] = base_wall
    result["total_wall_s"] = round(time.perf_counter() - t0, 2)
    if out is not None:
        result["out"] = str(out)
    return result
