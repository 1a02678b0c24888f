"""Forecast benchmark sets: every shared fashion source as a wide table with its evaluation protocol.

Why: a forecaster chosen on one set (HERMES F1) can look good by accident. The same benchmark runs on
attribute shares of two other, unrelated sources, built here reproducibly from the raw files:

* ``hermes_f1``: HERMES' 100 weekly series and their protocol (PROTOCOL.md).
* ``streetstyle``: StreetStyle-27K's human labels (test + validation) as weekly shares of each value of
  each clothing attribute, worldwide: 2013-07 .. 2015-12, train to 2015-06, forecast 26 weeks (weeks
  with fewer than 5 labelled looks are gaps). ``by="month"`` gives the monthly variant (6 months ahead).
* ``catalogue``: the Myntra catalogue's ``styles.csv`` as shares of base colours, article types, usage
  and master categories per (year, season): 2010 .. 2017, train to 2016, forecast the 4 seasons of 2017.

Which values become series is decided on the training periods only, so no set peeks at its test part.
Periods without enough observations are gaps (NaN), which the models must cope with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from visionlake.errors import BadInput, NotFound
from visionlake.trends.styles_csv import read_styles

HERMES_MAIN = "f1_main_100_sequences.csv"
HERMES_FF = "f1_fashion_forward_100_sequences.csv"
HERMES_TRAIN = 209
STREETSTYLE_FILES = ("streetstyle27ktest.csv", "streetstyle27kvalidation.csv")
STREETSTYLE_ATTRS = ("major_color", "clothing_pattern", "clothing_category", "sleeve_length", "neckline_shape",
                     "multiple_layers", "wearing_jacket", "wearing_hat", "wearing_scarf", "collar_presence")
CATALOGUE_COLUMNS = ("baseColour", "articleType", "usage", "masterCategory")
SEASON_MONTH = {"Spring": 3, "Summer": 6, "Fall": 9, "Winter": 12}


@dataclass
class BenchSet:
    """A wide table (rows: periods, columns: series) and how to cut it."""

    name: str
    wide: pd.DataFrame
    n_train: int
    horizon: int
    season: int
    signal: pd.DataFrame | None = None

    @property
    def shares(self) -> bool:
        """Whether every training value is a share in [0, 1] (forecasts are then clipped to it)."""
        v = self.wide.iloc[: self.n_train].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        return bool(len(v)) and float(v.min()) >= 0.0 and float(v.max()) <= 1.0


def read_wide(path: Path) -> pd.DataFrame:
    """A wide CSV: first column dates, one numeric column per series."""
    if not path.exists():
        raise NotFound(f"no such file: {path}")
    try:
        df = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    if df.empty or df.shape[1] == 0:
        raise BadInput(f"{path.name} has no series (expected: first column the date, one column per series)")
    idx = pd.to_datetime(pd.Series(df.index.astype(str)), errors="coerce")
    if idx.isna().any():
        raise BadInput(f"the first column of {path.name} must be dates; e.g. {df.index[idx.isna()][0]!r}")
    df.index = pd.DatetimeIndex(idx)
    df = df.apply(pd.to_numeric, errors="coerce")
    return df.sort_index()


def _rows_through(index: pd.DatetimeIndex, train_end: str) -> int:
    try:
        end = pd.Timestamp(train_end)
    except (ValueError, TypeError):
        raise BadInput(f"--train-end must be a date, not {train_end!r}") from None
    return int((index <= end).sum())


def hermes_f1(folder: Path, train_end: str | None = None, horizon: int | None = None) -> BenchSet:
    """HERMES F1 (100 weekly series) with its weak signal and protocol (209 training weeks, 52 ahead)."""
    main = folder / HERMES_MAIN
    if not main.exists():
        raise NotFound(f"{folder} has no {HERMES_MAIN}; pass a wide CSV file instead")
    df = read_wide(main)
    ff = read_wide(folder / HERMES_FF) if (folder / HERMES_FF).exists() else None
    n = HERMES_TRAIN if train_end is None else _rows_through(df.index, train_end)
    return BenchSet("hermes_f1", df, n, horizon or min(52, len(df) - n) or 52, 52, ff)


def streetstyle_shares(folder: Path, by: str = "week", attributes: tuple[str, ...] = STREETSTYLE_ATTRS,
                       train_end: str = "2015-06-30", horizon: int | None = None, min_looks: int = 50,
                       min_period_looks: int = 5) -> BenchSet:
    """Monthly (or weekly) worldwide share of each value of each attribute among looks labelled for it.

    A value becomes a series when at least ``min_looks`` training looks show it; binary yes/no attributes
    keep only "Yes" (the other share is its complement and would count the same curve twice).
    """
    frames = [pd.read_csv(folder / f) for f in STREETSTYLE_FILES if (folder / f).exists()]
    if not frames:
        raise NotFound(f"{folder} has none of {', '.join(STREETSTYLE_FILES)}")
    df = pd.concat(frames, ignore_index=True)
    t = pd.to_datetime(df["created_time"], errors="coerce", utc=True).dt.tz_localize(None)
    freq = {"month": "MS", "week": "W-MON"}[by]
    period = t.dt.to_period("M").dt.start_time if by == "month" else t.dt.to_period("W-SUN").dt.start_time
    end = pd.Timestamp(train_end)
    cols = {}
    for a in attributes:
        if a not in df.columns:
            continue
        lab = df[a].where(df[a].notna())
        train_counts = lab[period <= end].value_counts()
        values = [v for v, c in train_counts.items() if c >= min_looks]
        if set(train_counts.index) <= {"Yes", "No"}:
            values = [v for v in values if v == "Yes"]
        denom = lab.notna().groupby(period).sum()
        for v in values:
            cols[f"{a}={v}"] = (lab == v).groupby(period).sum() / denom.where(denom >= min_period_looks)
    wide = pd.DataFrame(cols).sort_index()
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq=freq))
    h = horizon or (6 if by == "month" else 26)
    return BenchSet(f"streetstyle_{by}", wide, _rows_through(wide.index, train_end), h, 12 if by == "month" else 52)


def catalogue_shares(styles: Path, columns: tuple[str, ...] = CATALOGUE_COLUMNS, top: int = 12,
                     first_year: int = 2010, last_year: int = 2017, train_end: str = "2016-12-31",
                     horizon: int = 4, min_items: int = 20, min_presence: float = 0.8) -> BenchSet:
    """Share of catalogue items per (year, season) taking each of the ``top`` training values of each column.

    Seasons become dates (Spring March, Summer June, Fall September, Winter December of that year);
    a season with fewer than ``min_items`` items is a gap, and a value present in fewer than
    ``min_presence`` of the supported training seasons is left out (it is an on/off event, not a curve).
    """
    if styles.is_dir():
        styles = styles / "styles.csv"
    if not styles.exists():
        raise NotFound(f"no such file: {styles}")
    df = pd.DataFrame(read_styles(styles).values())
    df = df[df["season"].isin(list(SEASON_MONTH)) & df["year"].str.fullmatch(r"\d{4}")]
    df["ds"] = pd.to_datetime(dict(year=df["year"].astype(int), month=df["season"].map(SEASON_MONTH), day=1))
    end = pd.Timestamp(train_end)
    index = pd.date_range(f"{first_year}-03-01", f"{last_year}-12-01", freq="3MS")
    n_items = df.groupby("ds").size().reindex(index, fill_value=0)
    ok = n_items >= min_items
    cols = {}
    tr = df[df["ds"] <= end]
    supported = ok & (index <= end)
    for c in columns:
        for v in tr[c][tr[c].str.len() > 0].value_counts().head(top).index:
            cnt = (df[c] == v).groupby(df["ds"]).sum().reindex(index, fill_value=0)
            # a value absent from most training seasons has no curve to forecast, only on/off events
            if (cnt[supported] > 0).mean() < min_presence:
                continue
            cols[f"{c}={v}"] = (cnt / n_items).where(ok)
    wide = pd.DataFrame(cols, index=index)
    return BenchSet("catalogue", wide, _rows_through(index, train_end), horizon, 4)


def load_set(data: Path, train_end: str | None = None, horizon: int | None = None, season: int | None = None,
             signal: Path | None = None) -> BenchSet:
    """The benchmark set ``data`` names: a HERMES, StreetStyle or fashion_products folder, or a wide CSV."""
    if not data.exists():
        raise NotFound(f"no such file or folder: {data}")
    if data.is_dir():
        if (data / HERMES_MAIN).exists():
            bs = hermes_f1(data, train_end, horizon)
        elif any((data / f).exists() for f in STREETSTYLE_FILES):
            kw = {"train_end": train_end} if train_end else {}
            bs = streetstyle_shares(data, horizon=horizon, **kw)
        elif (data / "styles.csv").exists():
            kw = {"train_end": train_end} if train_end else {}
            bs = catalogue_shares(data / "styles.csv", horizon=horizon or 4, **kw)
        else:
            raise BadInput(f"{data} is not a benchmark folder (HERMES F1, StreetStyle-27K or fashion_products); "
                           "pass a wide CSV instead")
    else:
        df = read_wide(data)
        if train_end is None:
            if horizon is None:
                raise BadInput("give --train-end DATE (last training row, inclusive) or --horizon H")
            n = len(df) - horizon
        else:
            n = _rows_through(df.index, train_end)
        h = horizon if horizon is not None else min(52, len(df) - n) or 52
        bs = BenchSet(data.stem, df, n, h, 52, read_wide(signal) if signal is not None else None)
    if season is not None:
        bs.season = season
    if bs.n_train < 3:
        raise BadInput(f"only {bs.n_train} training rows before --train-end; need more history")
    return bs
