"""Observations -> tidy share series with counts and Wilson confidence intervals.

An *observation* is one look (an image, a person box, a catalogue item) showing one value of one
attribute at one time, in some segments (city, brand, ...). The long form used everywhere is::

    look_id | time | attribute | value | confidence | <segment columns...>

The output is one tidy long table, as statsforecast expects (``unique_id, ds, y``), plus ``attribute,
value``, the segment columns, ``count`` (looks showing the value), ``n`` (looks where the attribute
was observed), ``lo``/``hi`` (Wilson 95%) and ``low_support`` (``n < min_support``). Periods in which a
segment had no looks stay in the table with ``n = 0`` and ``y = NaN``: too little support is marked,
never silently dropped.

Why a share of *annotated* looks and not of all looks: tags and human labels are incomplete (a
StreetStyle box may have no colour label); counting unlabelled looks as "not black" would bias every
curve towards zero wherever annotators were lazier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from visionlake.errors import BadInput, NotFound

PERIODS = ("week", "month", "season", "year")
Z95 = 1.959963984540054
_FREQ = {"week": "W-MON", "month": "MS", "year": "YS"}


# ------------------------------------------------------------------------------------- statistics
def wilson_interval(count: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion ``count / n``; NaN where ``n == 0``.

    Why Wilson: with the small per-segment counts of trend data (5 looks in a city-month) the normal
    interval leaves [0, 1] and collapses to zero width at 0% or 100%; Wilson does neither.
    ``count`` may be fractional (confidence-weighted counts).
    """
    count = np.asarray(count, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = count / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
    hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    # guard rounding: the interval always contains the estimate
    lo = np.where(n > 0, np.minimum(lo, p), np.nan)
    hi = np.where(n > 0, np.maximum(hi, p), np.nan)
    return lo, hi


# ------------------------------------------------------------------------------------------- time
def parse_time(values: pd.Series, column: str = "time") -> pd.Series:
    """Parse a time column (dates, timestamps, or plain years) into naive UTC timestamps.

    Raises :class:`BadInput` with examples when most values do not parse, so that a wrong
    ``--time`` column is reported instead of producing an empty result.
    """
    if len(values) == 0:
        raise BadInput("the table is empty: no observations to aggregate")
    s = values
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().mean() > 0.9 and num.dropna().between(1800, 2200).all():
        out = pd.to_datetime(num.astype("Int64").astype(str), format="%Y", errors="coerce")
    else:
        out = pd.to_datetime(s.astype(str), errors="coerce", utc=True, format="mixed")
        out = out.dt.tz_convert(None)
    bad = out.isna() & s.notna()
    if out.notna().sum() == 0 or bad.mean() > 0.5:
        examples = ", ".join(repr(str(v)) for v in s[bad].head(3))
        raise BadInput(
            f"time column {column!r} does not parse as dates ({int(bad.sum())} of {len(s)} values "
            f"unreadable, e.g. {examples}); pass --time with a date or year column"
        )
    return out


def period_start(ts: pd.Series, by: str) -> pd.Series:
    """Start of the week (Monday), month, meteorological season (Mar/Jun/Sep/Dec) or year."""
    if by not in PERIODS:
        raise BadInput(f"unknown period {by!r}; choose one of {', '.join(PERIODS)}")
    if by == "week":
        return (ts - pd.to_timedelta(ts.dt.weekday, unit="D")).dt.normalize()
    if by == "month":
        return ts.dt.to_period("M").dt.to_timestamp()
    if by == "year":
        return ts.dt.to_period("Y").dt.to_timestamp()
    # season: Dec-Feb winter starts in December of the previous year
    month = ts.dt.month
    start_month = ((month % 12) // 3) * 3
    start_month = start_month.where(start_month != 0, 12)
    year = ts.dt.year - (month <= 2).astype(int)
    return pd.to_datetime(dict(year=year, month=start_month, day=1))


def period_range(start: pd.Timestamp, end: pd.Timestamp, by: str) -> pd.DatetimeIndex:
    """Every period start between two period starts, so that empty periods appear as rows."""
    if by == "season":
        return pd.date_range(start, end, freq="3MS")
    return pd.date_range(start, end, freq=_FREQ[by])


def season_label(ds: pd.Timestamp) -> str:
    """Readable name of a season period, e.g. ``2014 summer``."""
    names = {12: "winter", 3: "spring", 6: "summer", 9: "autumn"}
    return f"{ds.year} {names.get(ds.month, ds.strftime('%b'))}"


# ---------------------------------------------------------------------------------------- tables
def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table of observations with a clear message when it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise NotFound(f"no such table: {p}")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            try:
                df = pd.read_csv(p, low_memory=False)
            except pd.errors.ParserError:
                # ragged rows (e.g. unquoted commas in a product name): keep the readable ones, say so
                df = pd.read_csv(p, low_memory=False, on_bad_lines="skip")
                with open(p, "rb") as fh:
                    lines = sum(1 for _ in fh) - 1
                df.attrs["skipped_rows"] = max(0, lines - len(df))
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise BadInput(f"cannot read {p.name} as a table: {str(exc).splitlines()[0]}") from None
    if df.empty:
        raise BadInput(f"{p.name} has no rows: no observations to aggregate")
    return df


def wide_to_long(
    df: pd.DataFrame,
    time: str,
    attributes: Sequence[str],
    segments: Sequence[str] = (),
    id_column: str | None = None,
    confidence_columns: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per look with one column per attribute (StreetStyle) -> long observations.

    Empty cells mean "not observed" and produce no observation (they are not counted in ``n``).
    """
    missing = [c for c in [time, *attributes, *segments] if c not in df.columns]
    if missing:
        known = ", ".join(map(str, df.columns[:30]))
        raise BadInput(f"unknown column(s) {', '.join(missing)}; the table has: {known}")
    if not attributes:
        raise BadInput("name at least one attribute column (--attributes a,b,c)")
    base = df.copy()
    base["look_id"] = base[id_column] if id_column and id_column in base.columns else np.arange(len(base))
    frames = []
    for attr in attributes:
        cols = ["look_id", time, *segments]
        part = base[cols].copy()
        part["attribute"] = attr
        part["value"] = base[attr]
        conf = (confidence_columns or {}).get(attr)
        part["confidence"] = base[conf].astype(float) if conf else 1.0
        frames.append(part[part["value"].notna() & (part["value"].astype(str).str.strip() != "")])
    long = pd.concat(frames, ignore_index=True)
    long = long.rename(columns={time: "time"})
    long["value"] = long["value"].astype(str).str.strip()
    return long


# ------------------------------------------------------------------------------------- the series
def series_id(attribute: str, value: str, segment_values: Sequence[object] = (),
              segments: Sequence[str] = ()) -> str:
    """``unique_id`` of a series: ``city=Paris|colour=black`` (segments first, then the value)."""
    parts = [f"{s}={v}" for s, v in zip(segments, segment_values, strict=False)]
    return "|".join([*parts, f"{attribute}={value}"])


def compute_series(
    obs: pd.DataFrame,
    by: str = "month",
    segments: Sequence[str] = (),
    attributes: Sequence[str] | None = None,
    min_support: int = 10,
    weighted: bool = False,
    time_column: str = "time",
) -> pd.DataFrame:
    """Share of looks showing each attribute value per period (and segment), with Wilson 95% CIs.

    ``obs`` is the long observation table (see the module docstring). A look that shows a value more
    than once (two black garments) counts once; with ``weighted=True`` it counts with its highest tag
    confidence instead of 1, while ``n`` stays the number of looks (an uncertain tag is partial
    evidence, not a partial look).
    """
    if obs is None or len(obs) == 0:
        raise BadInput("no observations: the table is empty")
    need = [time_column, "attribute", "value"]
    missing = [c for c in [*need, *segments] if c not in obs.columns]
    if missing:
        raise BadInput(f"observations lack column(s) {', '.join(missing)}")
    df = obs.copy()
    if "look_id" not in df.columns:
        df["look_id"] = df["image_id"] if "image_id" in df.columns else np.arange(len(df))
    if "confidence" not in df.columns:
        df["confidence"] = 1.0
    df["confidence"] = pd.to_numeric(df["confidence"], errors="coerce").fillna(1.0).clip(0, 1)
    known_attrs = sorted(df["attribute"].astype(str).unique())
    if attributes:
        unknown = [a for a in attributes if a not in known_attrs]
        if unknown:
            raise BadInput(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(known_attrs)}")
        df = df[df["attribute"].isin(list(attributes))]
    ts = df[time_column]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        ts = parse_time(ts, time_column)
    df["ds"] = period_start(ts, by)
    df = df[df["ds"].notna()]
    if df.empty:
        raise BadInput("no observation has a usable time")
    for s in segments:
        df[s] = df[s].astype(str).where(df[s].notna(), "unknown")
    seg = list(segments)

    # one row per (look, attribute, value): the highest confidence of that look's tags
    per_look = df.groupby(["look_id", "ds", "attribute", "value", *seg], observed=True, sort=False)[
        "confidence"].max().reset_index()
    # n: looks with the attribute observed, per period and segment
    n_tab = (per_look.groupby(["ds", "attribute", *seg], observed=True)["look_id"].nunique()
             .rename("n").reset_index())
    per_look["w"] = per_look["confidence"] if weighted else 1.0
    c_tab = (per_look.groupby(["ds", "attribute", "value", *seg], observed=True)
             .agg(count=("w", "sum"), looks=("look_id", "nunique")).reset_index())

    # complete grid: every value of an attribute x every period x every segment combination seen
    periods = period_range(df["ds"].min(), df["ds"].max(), by)
    values = df[["attribute", "value"]].drop_duplicates()
    seg_combos = df[seg].drop_duplicates() if seg else pd.DataFrame(index=[0])
    grid = values.merge(pd.DataFrame({"ds": periods}), how="cross")
    if seg:
        grid = grid.merge(seg_combos, how="cross")
    out = grid.merge(n_tab, on=["ds", "attribute", *seg], how="left")
    out = out.merge(c_tab, on=["ds", "attribute", "value", *seg], how="left")
    out["n"] = out["n"].fillna(0).astype(int)
    out["count"] = out["count"].fillna(0.0)
    out["looks"] = out["looks"].fillna(0).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["y"] = np.where(out["n"] > 0, out["count"] / out["n"].where(out["n"] > 0, 1), np.nan)
    out["lo"], out["hi"] = wilson_interval(out["count"].to_numpy(), out["n"].to_numpy())
    out["low_support"] = out["n"] < int(min_support)
    out["unique_id"] = [
        series_id(a, v, [r[s] for s in seg], seg) for a, v, r in
        zip(out["attribute"], out["value"], out[seg].to_dict("records") if seg else [{}] * len(out),
            strict=True)
    ]
    if not weighted:
        out["count"] = out["count"].round().astype(int)
    cols = ["unique_id", "ds", "y", "count", "n", "lo", "hi", "low_support", "attribute", "value", *seg]
    out = out[cols].sort_values(["unique_id", "ds"]).reset_index(drop=True)
    out.attrs.update(by=by, segments=seg, min_support=int(min_support), weighted=weighted)
    return out


def long_observations(df: pd.DataFrame, time: str, attributes: Sequence[str], segments: Sequence[str] = (),
                      id_column: str | None = None) -> pd.DataFrame:
    """Accept either a long table (``attribute``/``value`` columns) or a wide one (one column each)."""
    if df.empty:
        raise BadInput("the table has no rows: no observations to aggregate")
    if time not in df.columns:
        raise BadInput(f"no time column {time!r}; the table has: {', '.join(map(str, df.columns[:30]))}")
    if {"attribute", "value"} <= set(df.columns):
        missing = [s for s in segments if s not in df.columns]
        if missing:
            raise BadInput(f"unknown segment column(s) {', '.join(missing)}")
        out = df.rename(columns={time: "time"}).copy()
        if attributes:
            unknown = sorted(set(attributes) - set(out["attribute"].astype(str)))
            if unknown:
                raise BadInput(f"unknown attribute(s) {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(out['attribute'].astype(str).unique()))}")
            out = out[out["attribute"].isin(list(attributes))]
        if "look_id" not in out.columns:
            out["look_id"] = out[id_column] if id_column else out.get("image_id", np.arange(len(out)))
        return out
    return wide_to_long(df, time, attributes, segments, id_column)


def to_wide(series: pd.DataFrame, fill: bool = True) -> pd.DataFrame:
    """Tidy series -> wide matrix (rows ``ds``, one column per ``unique_id``), gaps interpolated.

    Forecast models need a value every period; a period without looks gets the interpolated share
    (carried at the ends), and an all-empty series becomes zeros.
    """
    wide = series.pivot(index="ds", columns="unique_id", values="y").sort_index()
    if fill:
        wide = wide.interpolate(limit_direction="both").fillna(0.0)
    return wide
