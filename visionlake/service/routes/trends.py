"""Trends: series, signals, forecasts and reports from a collection's fashion tags or from a table.

The same functions as ``visionlake trends ...`` (:mod:`visionlake.trends`), over HTTP. A query names
its observations in one of three ways:

* ``collection``: the fashion tags of a lake collection (the key must see the collection; 404 otherwise);
* ``table_id``: a CSV/Parquet table uploaded with ``POST /trends/tables`` (human labels, tags made
  elsewhere). Tables are stored in the lake under ``service/trend_tables``; a key sees the tables it
  uploaded, an unscoped key sees all of them;
* ``path``: a table on the server, under an ingest root (admins: anywhere the server can read).

Observations are cached for a short while (:data:`OBS_TTL_S`), so that the dashboard's series,
signals and forecast calls on one source read and reshape it once.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field

from visionlake.errors import BadInput, NotFound
from visionlake.service.deps import State, Viewer, find_collection
from visionlake.service.errors import COMMON, ApiError, responses
from visionlake.service.limits import check_table_bounds, run_blocking
from visionlake.trends.forecast import ModelName

router = APIRouter(tags=["trends"])

#: Seconds observations of a collection stay cached (uploaded tables never change; they stay until evicted).
OBS_TTL_S = 30.0
#: Rows of series returned at most (the dashboard asks for the largest series first).
MAX_SERIES_ROWS = 50_000
TABLE_ID = r"^[0-9a-f]{24}$"
_NAME = re.compile(r"[^A-Za-z0-9._ -]+")

Period = Literal["week", "month", "season", "year"]
Model = ModelName
ColumnName = Annotated[str, Field(min_length=1, max_length=200)]


# ---------------------------------------------------------------------------------------------- models
class TrendQuery(BaseModel):
    """Where the observations come from and how to aggregate them."""

    collection: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="A collection with fashion tags")
    table_id: str | None = Field(default=None, pattern=TABLE_ID, description="An uploaded table")
    path: str | None = Field(default=None, min_length=1, max_length=4096,
                             description="A CSV/Parquet file on the server (under an ingest root)")
    time: ColumnName = Field(default="time", description="Time column of a table (dates or years)")
    attributes: list[ColumnName] = Field(default_factory=list, max_length=100,
                                         description="Attributes (table columns, or tag attributes); empty = all")
    segments: list[ColumnName] = Field(default_factory=list, max_length=4,
                                       description="Segment columns (city, brand, ...)")
    id_column: ColumnName | None = Field(default=None, description="Column identifying a look (tables)")
    by: Period = "month"
    min_support: int = Field(default=10, ge=1, le=1_000_000, description="Looks below which a point is marked")
    weighted: bool = Field(default=False, description="Weight tags by their confidence")


class SeriesQuery(TrendQuery):
    top: int | None = Field(default=None, ge=1, le=5000, description="Only the N series with most looks")
    ids: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=500,
                                                               description="Only these series")


class SignalsQuery(TrendQuery):
    top: int = Field(default=20, ge=1, le=500)
    lift_min_looks: int = Field(default=10, ge=1, le=1_000_000)


class ForecastQuery(TrendQuery):
    horizon: int = Field(default=12, ge=1, le=156, description="Periods to forecast")
    model: Model = "default"
    top: int = Field(default=8, ge=1, le=100, description="Forecast the N series with most looks (if no ids)")
    ids: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=100)


class ReportQuery(TrendQuery):
    horizon: int = Field(default=12, ge=1, le=156)
    model: Model = "default"
    top: int = Field(default=6, ge=1, le=30, description="Rising and falling values shown")
    format: Literal["html", "pdf"] = "html"


class SeriesRow(BaseModel):
    unique_id: str
    ds: str
    y: float | None = Field(description="Share of looks showing the value (None: no looks that period)")
    count: float
    n: int
    lo: float | None = None
    hi: float | None = None
    low_support: bool
    attribute: str
    value: str
    segments: dict[str, str] = {}


class SeriesOut(BaseModel):
    source: str
    by: str
    segments: list[str]
    min_support: int
    series: int
    periods: int
    truncated: bool
    colours: dict[str, list[str]] = Field(default_factory=dict, description="unique_id -> [line, outline] for "
                                          "values that are named colours (drawn in their own colour)")
    rows: list[SeriesRow]


class SignalRow(BaseModel):
    unique_id: str
    label: str
    attribute: str | None = None
    value: str | None = None
    segments: dict[str, str] = {}
    periods: int
    supported_periods: int
    looks: int
    share: float | None = None
    first: str | None = None
    last: str | None = None
    last_share: float | None = None
    prev_share: float | None = None
    change: float | None = None
    change_p: float | None = None
    tau: float | None = None
    trend_p: float | None = None
    slope: float | None = None
    slope_per_year: float | None = None
    seasonal_strength: float | None = None
    support: str | None = Field(default=None, description="adequate, or low: no direction is called")
    confidence: float | None = Field(default=None, description="Level at which rising/falling were tested")
    section: str | None = Field(default=None, description="Report section: Rising, Emerging, Falling, "
                                                          "Seasonal or Low support (None: stable)")
    summary: str = Field(default="", description="The sentence the CLI and reports print for this row")


class LiftRow(BaseModel):
    items: str
    size: int
    looks: int
    support: float
    lift: float


class SignalsOut(BaseModel):
    source: str
    by: str
    labels: dict[str, int]
    rising: list[SignalRow]
    falling: list[SignalRow]
    signals: list[SignalRow]
    sections: dict[str, list[str]] = Field(default_factory=dict,
                                           description="unique_ids listed under each report section")
    lift: list[LiftRow]


class ForecastRow(BaseModel):
    unique_id: str
    ds: str
    mean: float
    lo_80: float | None = None
    hi_80: float | None = None
    lo_95: float | None = None
    hi_95: float | None = None


class ForecastOut(BaseModel):
    source: str
    by: str
    model: str
    horizon: int
    season: int | None = None
    weights: dict[str, float] = {}
    choice: str | None = Field(default=None, description="What the default chose by rolling-origin CV")
    cv_mase: float | None = Field(default=None, description="CV MASE of that choice (None: history too short)")
    rows: list[ForecastRow]


class TableOut(BaseModel):
    table_id: str
    name: str
    rows: int
    columns: list[str]
    uploaded_at: str | None = None
    suggested_time: str | None = Field(default=None, description="A column that reads as dates or years")
    suggested_attributes: list[str] = Field(default_factory=list,
                                            description="Text columns with 2-60 distinct values (labels)")
    suggested_id_column: str | None = None


# ---------------------------------------------------------------------------------------------- helpers
def _clean(v: Any) -> Any:
    """JSON-safe scalar: NaN -> None, timestamps -> ISO dates, numpy -> Python."""
    if v is None:
        return None
    if isinstance(v, pd.Timestamp | datetime | date):
        return None if pd.isna(v) else v.strftime("%Y-%m-%d")
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating | float):
        return float(v) if math.isfinite(float(v)) else None
    return v


def _records(df: pd.DataFrame, segments: list[str], skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict("records"):
        r = {k: _clean(v) for k, v in rec.items() if k not in segments and k not in skip}
        r["segments"] = {s: str(rec[s]) for s in segments if s in rec}
        for k in ("attribute", "value", "unique_id", "label"):
            if k in r and r[k] is not None:
                r[k] = str(r[k])
        out.append(r)
    return out


class _ObsCache:
    """A few recent observation tables, keyed by source and parameters (per process)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: dict[tuple[Any, ...], tuple[float, pd.DataFrame, str, Path | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], ttl: float | None) -> tuple[pd.DataFrame, str, Path | None] | None:
        with self._lock:
            hit = self._items.get(key)
        if hit is None or (ttl is not None and time.monotonic() - hit[0] > ttl):
            return None
        return hit[1], hit[2], hit[3]

    def drop_table(self, table_id: str) -> None:
        """Forget every cached reading of one uploaded table."""
        with self._lock:
            for k in [k for k in self._items if k[:2] == ("table", table_id)]:
                del self._items[k]

    def put(self, key: tuple[Any, ...], value: tuple[pd.DataFrame, str, Path | None]) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                del self._items[min(self._items, key=lambda k: self._items[k][0])]
            self._items[key] = (time.monotonic(), *value)


def _obs_cache(st: Any) -> _ObsCache:
    c = getattr(st, "trend_obs", None)
    if c is None:
        with st._locks_guard:
            c = getattr(st, "trend_obs", None)
            if c is None:
                c = st.trend_obs = _ObsCache()
    return c


def _tables_dir(st: Any) -> Path:
    from visionlake.service.retention import trend_tables_dir

    return trend_tables_dir(st.lake)


def _table_meta(st: Any, table_id: str) -> dict[str, Any]:
    p = _tables_dir(st) / f"{table_id}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        raise ApiError(404, "not_found", f"no uploaded table {table_id!r}") from None


def _visible_table(st: Any, who: Any, table_id: str) -> tuple[dict[str, Any], Path]:
    """The table's facts and file if this key may use it (the same 404 otherwise)."""
    if not re.fullmatch(TABLE_ID[1:-1], table_id):
        raise ApiError(404, "not_found", f"no uploaded table {table_id!r}")
    meta = _table_meta(st, table_id)
    if not who.unscoped and meta.get("key_id") != who.key_id:
        raise ApiError(404, "not_found", f"no uploaded table {table_id!r}")
    path = _tables_dir(st) / meta["file"]
    if not path.is_file():
        raise ApiError(404, "not_found", f"no uploaded table {table_id!r}")
    return meta, path


def _observations(st: Any, who: Any, q: TrendQuery) -> tuple[pd.DataFrame, str, Path | None]:
    """Long observations of the query's source (cached), plus its display name and thumbnail root."""
    from visionlake.trends.observations import long_observations, read_table

    given = [x is not None for x in (q.collection, q.table_id, q.path)]
    if sum(given) != 1:
        raise ApiError(400, "bad_input", "give exactly one source: collection, table_id or path")
    cache = _obs_cache(st)
    attrs, segs = tuple(q.attributes), tuple(q.segments)
    if q.collection is not None:
        col = find_collection(st, q.collection, who)
        key: tuple[Any, ...] = ("collection", col.id, attrs, segs)
        hit = cache.get(key, OBS_TTL_S)
        if hit is not None:
            return hit
        from visionlake.trends.lake_source import observations_from_lake

        obs = observations_from_lake(st.lake, col.name)
        if attrs:
            known = sorted(obs["attribute"].astype(str).unique())
            unknown = [a for a in attrs if a not in known]
            if unknown:
                raise BadInput(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(known)}")
            obs = obs[obs["attribute"].isin(list(attrs))]
        missing = [s for s in segs if s not in obs.columns]
        if missing:
            raise BadInput(f"unknown segment(s) {', '.join(missing)}: not in the images' metadata")
        value = (obs, col.name, st.lake.root)
    else:
        if q.table_id is not None:
            meta, path = _visible_table(st, who, q.table_id)
            name, stamp = meta.get("name", q.table_id), q.table_id
        else:
            from visionlake.service.routes.ingest import _allowed_path

            path = _allowed_path(st, who, str(q.path))
            if not path.is_file():
                raise NotFound(f"no such table on the server: {path.name}")
            name, stamp = path.name, (str(path), path.stat().st_mtime_ns)
        key = ("table", stamp, q.time, attrs, segs, q.id_column)
        hit = cache.get(key, None)
        if hit is not None:
            return hit
        check_table_bounds(path, st.limits)
        df = read_table(path)
        if not attrs and not {"attribute", "value"} <= set(df.columns):
            raise BadInput("name the attribute columns of the table (attributes)")
        obs = long_observations(df, q.time, list(attrs), list(segs), q.id_column)
        value = (obs, name, None)
    cache.put(key, value)
    return value


def _series(st: Any, who: Any, q: TrendQuery) -> tuple[pd.DataFrame, pd.DataFrame, str, Path | None]:
    from visionlake.trends.observations import compute_series

    obs, name, root = _observations(st, who, q)
    s = compute_series(obs, by=q.by, segments=list(q.segments), min_support=q.min_support, weighted=q.weighted)
    return s, obs, name, root


def _data_errors(fn: Any) -> Any:
    """Run ``fn``; errors raised by pandas/numpy on a user's table become 400 with their message."""
    try:
        return fn()
    except (ApiError, BadInput, NotFound):
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ApiError(400, "bad_input", f"cannot compute trends on this data: {type(exc).__name__}: "
                                         f"{str(exc)[:300]}") from None


def suggest_columns(df: pd.DataFrame) -> dict[str, Any]:
    """Guess the time column, the id column and the label columns of a table, for the dashboard's
    defaults: a time column is named like one and parses; labels are text columns with 2-60 values."""
    from visionlake.trends.observations import parse_time

    cols = [str(c) for c in df.columns]
    time_col = None
    for c in sorted(cols, key=lambda c: not re.search(r"time|date", c, re.I)):
        if not re.search(r"time|date|year|month|day|when", c, re.I):
            continue
        try:
            parse_time(df[c].dropna().head(500), c)
        except (BadInput, ValueError, TypeError, OverflowError):
            continue
        time_col = c
        break
    id_col = next((c for c in cols if c.lower() in ("id", "look_id", "image_id")), None)
    attrs = []
    if {"attribute", "value"} <= set(cols):
        attrs = sorted(str(a) for a in df["attribute"].dropna().astype(str).unique()[:100])
    else:
        for c in cols:
            if c in (time_col, id_col) or re.search(r"(^|_)id$", c, re.I):
                continue
            col = df[c]
            if col.dtype == object or isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(col):
                if 2 <= col.nunique(dropna=True) <= 60:
                    attrs.append(c)
    return {"suggested_time": time_col, "suggested_attributes": attrs[:40], "suggested_id_column": id_col}


def _largest(s: pd.DataFrame, top: int) -> list[str]:
    return list(s.groupby("unique_id")["n"].sum().sort_values(ascending=False).head(top).index)


# ---------------------------------------------------------------------------------------------- tables
@router.post("/trends/tables", response_model=TableOut, status_code=201, responses=responses(*COMMON, 400, 413),
             summary="Upload a CSV or Parquet table of observations (one row per look, or long attribute/value)")
async def upload_table(st: State, who: Viewer, file: Annotated[UploadFile, File()],
                       name: Annotated[str | None, Form(max_length=200)] = None) -> dict[str, Any]:
    data = await file.read()
    if not data:
        raise ApiError(400, "bad_input", "the uploaded table is empty")
    ext = ".parquet" if (file.filename or "").lower().endswith((".parquet", ".pq")) or data[:4] == b"PAR1" \
        else ".csv"

    def work() -> dict[str, Any]:
        from visionlake.trends.observations import read_table

        table_id = secrets.token_hex(12)
        folder = _tables_dir(st)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{table_id}{ext}"
        path.write_bytes(data)
        try:
            check_table_bounds(path, st.limits)  # rows/cells declared, before anything is decompressed
            df = _data_errors(lambda: read_table(path))
            guesses = _data_errors(lambda: suggest_columns(df))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        shown = _NAME.sub("_", name or file.filename or "table")[:200] or "table"
        meta = {"table_id": table_id, "name": shown, "file": path.name, "rows": int(len(df)),
                "columns": [str(c) for c in df.columns][:500], "key_id": who.key_id,
                "uploaded_at": datetime.now(UTC).isoformat(), **guesses}
        (folder / f"{table_id}.json").write_text(json.dumps(meta))
        return meta

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.get("/trends/tables", response_model=list[TableOut], responses=responses(*COMMON),
            summary="Uploaded tables this key may use")
async def list_tables(st: State, who: Viewer) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        folder = _tables_dir(st)
        out = []
        for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                meta = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if who.unscoped or meta.get("key_id") == who.key_id:
                out.append(meta)
        return sorted(out, key=lambda m: m.get("uploaded_at") or "", reverse=True)

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.get("/trends/tables/{table_id}", response_model=TableOut, responses=responses(*COMMON, 404),
            summary="One uploaded table: its rows and columns")
async def get_table(table_id: Annotated[str, PathParam(max_length=64)], st: State, who: Viewer) -> dict[str, Any]:
    return _visible_table(st, who, table_id)[0]


@router.delete("/trends/tables/{table_id}", status_code=204, responses=responses(*COMMON, 404),
               summary="Delete an uploaded table (its file and facts; retention also deletes old ones)")
async def delete_table(table_id: Annotated[str, PathParam(max_length=64)], st: State, who: Viewer) -> Response:
    def work() -> None:
        from visionlake.service.retention import delete_trend_table

        meta, _path = _visible_table(st, who, table_id)
        delete_trend_table(st.lake, meta)
        _obs_cache(st).drop_table(table_id)

    await run_blocking(work, timeout=st.limits.request_timeout_s)
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------- analyses
@router.post("/trends/series", response_model=SeriesOut, responses=responses(*COMMON, 400, 403, 404),
             summary="Share of looks showing each value per period (and segment), with Wilson 95% intervals")
async def series(q: SeriesQuery, st: State, who: Viewer) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        s, _obs, name, _root = _series(st, who, q)
        n_series = int(s["unique_id"].nunique())
        if q.ids:
            s = s[s["unique_id"].isin(q.ids)]
        elif q.top:
            s = s[s["unique_id"].isin(_largest(s, q.top))]
        truncated = len(s) > MAX_SERIES_ROWS
        if truncated:
            s = s[s["unique_id"].isin(_largest(s, max(1, MAX_SERIES_ROWS // max(1, s["ds"].nunique()))))]
        from visionlake.trends.words import colour_of

        firsts = s.drop_duplicates("unique_id")
        colours = {str(r.unique_id): list(c) for r in firsts.itertuples()
                   if (c := colour_of(r.attribute, r.value)) is not None}
        return {"source": name, "by": q.by, "segments": list(q.segments), "min_support": q.min_support,
                "series": n_series, "periods": int(s["ds"].nunique()), "truncated": truncated,
                "colours": colours, "rows": _records(s, list(q.segments))}

    return await run_blocking(lambda: _data_errors(work), timeout=st.limits.request_timeout_s)


@router.post("/trends/signals", response_model=SignalsOut, responses=responses(*COMMON, 400, 403, 404),
             summary="Rising, falling, seasonal and emerging values, with tests, slopes and co-occurrence lift")
async def signals(q: SignalsQuery, st: State, who: Viewer) -> dict[str, Any]:
    from visionlake.trends.report import report_sections
    from visionlake.trends.signals import compute_signals, lift, top_movers
    from visionlake.trends.words import describe, section_of

    def work() -> dict[str, Any]:
        s, obs, name, _root = _series(st, who, q)
        sig = compute_signals(s, q.by)
        rising, falling = top_movers(sig, q.top)
        lifts = lift(obs, min_support=q.lift_min_looks, top=q.top)
        segs = list(q.segments)

        def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
            out = _records(df, segs)
            for r, (_i, raw) in zip(out, df.iterrows(), strict=True):
                r["section"] = section_of(str(raw["label"]))
                r["summary"] = describe(raw, None, q.by)
            return out

        parts = report_sections(sig, q.top)
        sections = {k: [str(u) for u in v["unique_id"]] for k, v in parts.items()}
        listed = {u for v in sections.values() for u in v}
        # the table holds the top rows and every row a section lists: a client never has to guess a label
        table = sig[sig.index.isin(sig.head(q.top).index) | sig["unique_id"].isin(listed)]
        return {"source": name, "by": q.by, "labels": {str(k): int(v) for k, v in sig["label"].value_counts().items()},
                "rising": rows(rising), "falling": rows(falling), "signals": rows(table),
                "sections": sections, "lift": _records(lifts, [], skip=("segments",))}

    return await run_blocking(lambda: _data_errors(work), timeout=st.limits.request_timeout_s)


@router.post("/trends/forecast", response_model=ForecastOut, responses=responses(*COMMON, 400, 403, 404),
             summary="Forecast series with 80/95% prediction intervals")
async def forecast(q: ForecastQuery, st: State, who: Viewer) -> dict[str, Any]:
    from visionlake.trends.pipeline import forecast_series

    def work() -> dict[str, Any]:
        s, _obs, name, _root = _series(st, who, q)
        ids = [i for i in q.ids if i in set(s["unique_id"])] if q.ids else _largest(s, q.top)
        if not ids:
            raise BadInput("none of the requested series exists in this source")
        fc = forecast_series(s, q.horizon, q.model, q.by, ids)
        rows = [{"unique_id": str(r["unique_id"]), "ds": _clean(r["ds"]), "mean": _clean(r["mean"]) or 0.0,
                 **{k.replace("-", "_"): _clean(r[k]) for k in ("lo-80", "hi-80", "lo-95", "hi-95") if k in r}}
                for r in fc.to_dict("records")]
        weights = {str(k): float(v) for k, v in (fc.attrs.get("weights") or {}).items()
                   if isinstance(v, int | float | np.floating)}
        return {"source": name, "by": q.by, "model": q.model, "horizon": q.horizon,
                "season": _clean(fc.attrs.get("season")), "weights": weights,
                "choice": fc.attrs.get("choice"), "cv_mase": _clean(fc.attrs.get("cv_mase")), "rows": rows}

    return await run_blocking(lambda: _data_errors(work), timeout=st.limits.request_timeout_s)


@router.post("/trends/report", response_class=Response,
             responses={**responses(*COMMON, 400, 403, 404),
                        200: {"content": {"text/html": {}, "application/pdf": {}},
                              "description": "The report (HTML with interactive charts, or PDF)"}},
             summary="Download a trend report: rising/falling values, curves with bands, forecasts, summaries")
async def report(q: ReportQuery, st: State, who: Viewer) -> Response:
    from visionlake.trends.pipeline import forecast_series
    from visionlake.trends.report import build_report, report_ids
    from visionlake.trends.signals import compute_signals, lift

    def work() -> tuple[bytes, str]:
        s, obs, name, root = _series(st, who, q)
        sig = compute_signals(s, q.by)
        ids = report_ids(sig, q.top)
        fc = forecast_series(s, q.horizon, q.model, q.by, ids) if ids and s["ds"].nunique() >= 2 else None
        with tempfile.TemporaryDirectory(prefix="vl-report-") as tmp:
            out = Path(tmp) / "report.html"
            res = build_report(s, sig, fc, out, obs=obs, title=f"Trends: {name}", top=q.top, thumb_root=root,
                               lifts=lift(obs, min_support=max(5, q.min_support)), pdf=q.format == "pdf")
            return Path(res["pdf"] if q.format == "pdf" else res["html"]).read_bytes(), name

    body, name = await run_blocking(lambda: _data_errors(work), timeout=st.limits.request_timeout_s)
    stem = _NAME.sub("_", f"trends-{name}").replace(" ", "_")[:100] or "trends"
    media = "application/pdf" if q.format == "pdf" else "text/html; charset=utf-8"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{q.format}"'})
