"""``visionlake trends ...``: series, signals, forecasts and reports from a lake or any table.

Every command reads observations either from a lake collection (``--collection``) or from a CSV /
Parquet table (``--table FILE --time COL --attributes a,b``), so tags made elsewhere and human labels
go through exactly the same statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from visionlake.cli.common import JsonOption, LakeOption, cli_table, collection_option, console, print_json
from visionlake.errors import BadInput
from visionlake.trends.forecast import MODEL_NAMES

if TYPE_CHECKING:  # pandas is imported where a command uses it: every CLI start would pay ~1 s for it
    import pandas as pd

app = typer.Typer(no_args_is_help=True)

CollectionOpt = Annotated[str | None, collection_option("Lake collection with fashion tags.")]
TableOpt = Annotated[Path | None, typer.Option("--table", help="CSV/Parquet of observations instead of a lake.")]
TimeOpt = Annotated[str, typer.Option("--time", help="Time column of the table (dates or years).")]
AttrOpt = Annotated[str | None, typer.Option("--attribute", "--attributes", "-a",
                                             help="Attribute(s), comma-separated (default: all).")]
ByOpt = Annotated[str, typer.Option("--by", help="Period: week, month, season or year.")]
SegOpt = Annotated[str | None, typer.Option("--segment", help="Segment column(s), comma-separated.")]
SupportOpt = Annotated[int, typer.Option("--min-support", min=1, help="Looks below which a point is marked.")]
WeightOpt = Annotated[bool, typer.Option("--weighted", help="Weight tags by their confidence.")]
IdOpt = Annotated[str | None, typer.Option("--id-column", help="Column identifying a look (default: row).")]
ThumbOpt = Annotated[Path | None, typer.Option("--images", help="Folder with <id>.jpg images of the table's looks.")]


def default_report_path(source: str) -> Path:
    """``reports/trends-<source>.html`` under the current folder: out of the repository root's way
    (``reports/`` is in .gitignore) and the same name on every run, so a rerun replaces the report."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in Path(source).stem).strip("-") or "report"
    return Path("reports") / f"trends-{stem}.html"


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


@dataclass
class Source:
    """Observations plus what is needed to draw thumbnails."""

    obs: pd.DataFrame
    name: str
    thumb_root: Path | None = None


def load_source(lake: Path | None, collection: str | None, table: Path | None, time: str,
                attributes: list[str], segments: list[str], id_column: str | None = None,
                images: Path | None = None) -> Source:
    """Observations from a lake collection or a table (exactly one of the two)."""
    from visionlake.trends.observations import long_observations, read_table

    if bool(collection) == bool(table):
        raise BadInput("give either --collection NAME (a lake) or --table FILE")
    if collection:
        from visionlake.lake import Lake
        from visionlake.trends.lake_source import observations_from_lake

        lk = Lake(lake, create=False)
        obs = observations_from_lake(lk, collection)
        if attributes:
            known = sorted(obs["attribute"].astype(str).unique())
            unknown = [a for a in attributes if a not in known]
            if unknown:
                raise BadInput(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(known)}")
            obs = obs[obs["attribute"].isin(attributes)]
        missing = [s for s in segments if s not in obs.columns]
        if missing:
            raise BadInput(f"unknown segment(s) {', '.join(missing)}: not in the images' metadata")
        return Source(obs, collection, lk.root)
    assert table is not None
    df = read_table(table)
    if not attributes and not {"attribute", "value"} <= set(df.columns):
        raise BadInput("name the attribute columns: --attributes a,b,c")
    obs = long_observations(df, time, attributes, segments, id_column)
    if images is not None:
        key = obs["look_id"].astype(str)
        obs["thumbnail"] = [str(images / f"{k}.jpg") for k in key]
    return Source(obs, Path(table).name, None)


def _series(src: Source, by: str, segments: list[str], min_support: int, weighted: bool) -> pd.DataFrame:
    from visionlake.trends.observations import compute_series

    return compute_series(src.obs, by=by, segments=segments, min_support=min_support, weighted=weighted)


def _write(df: pd.DataFrame, out: Path | None) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        df.to_parquet(out, index=False)
    else:
        df.to_csv(out, index=False)
    console.print(f"wrote {len(df)} rows to {out}")


def _show_series(s: pd.DataFrame, json_out: bool, limit: int = 40) -> None:
    import pandas as pd

    if json_out:
        recs = s.assign(ds=s["ds"].dt.strftime("%Y-%m-%d")).to_dict("records")
        print_json({"by": s.attrs.get("by"), "segments": s.attrs.get("segments"), "rows": recs})
        return
    t = cli_table("unique_id", "ds", "y", "count", "n", "lo", "hi", "low_support", keys=("unique_id",),
                  numeric=("ds", "y", "count", "n", "lo", "hi"),
                  title=f"{s['unique_id'].nunique()} series, {len(s)} rows"
                  + (f" (first {limit}; --json or --out for all)" if len(s) > limit else ""))
    for _, r in s.head(limit).iterrows():
        y = "" if pd.isna(r["y"]) else f"{r['y']:.3f}"
        lo = "" if pd.isna(r["lo"]) else f"{r['lo']:.3f}"
        hi = "" if pd.isna(r["hi"]) else f"{r['hi']:.3f}"
        t.add_row(r["unique_id"], f"{r['ds']:%Y-%m-%d}", y, str(r["count"]), str(r["n"]), lo, hi,
                  "low" if r["low_support"] else "")
    console.print(t)


@app.command("series")
def series_cmd(
    collection: CollectionOpt = None, table: TableOpt = None, time: TimeOpt = "time",
    attribute: AttrOpt = None, by: ByOpt = "month", segment: SegOpt = None, min_support: SupportOpt = 10,
    weighted: WeightOpt = False, id_column: IdOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the tidy table (.csv or .parquet).")] = None,
    lake: LakeOption = None, json_out: JsonOption = False,
) -> None:
    """Share of looks showing each attribute value per period (and segment), with Wilson 95% CIs."""
    src = load_source(lake, collection, table, time, _split(attribute), _split(segment), id_column)
    s = _series(src, by, _split(segment), min_support, weighted)
    _write(s, out)
    _show_series(s, json_out)


@app.command("from-table")
def from_table_cmd(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet, one row per look (or long attribute/value).")],
    time: TimeOpt = "time", attributes: AttrOpt = None, segment: SegOpt = None, by: ByOpt = "month",
    min_support: SupportOpt = 10, weighted: WeightOpt = False, id_column: IdOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the tidy table (.csv or .parquet).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Tidy series from any table of observations (tags made elsewhere, or human labels)."""
    src = load_source(None, None, file, time, _split(attributes), _split(segment), id_column)
    s = _series(src, by, _split(segment), min_support, weighted)
    _write(s, out)
    _show_series(s, json_out)


@app.command("signals")
def signals_cmd(
    collection: CollectionOpt = None, table: TableOpt = None, time: TimeOpt = "time",
    attribute: AttrOpt = None, by: ByOpt = "month", segment: SegOpt = None, min_support: SupportOpt = 10,
    weighted: WeightOpt = False, id_column: IdOpt = None,
    top: Annotated[int, typer.Option("--top", min=1)] = 20,
    lift_min: Annotated[int, typer.Option("--lift-min-looks", help="Min looks for a co-occurrence.")] = 10,
    lake: LakeOption = None, json_out: JsonOption = False,
) -> None:
    """Rising, falling, seasonal and emerging values, with tests, slopes and co-occurrence lift."""
    import pandas as pd

    from visionlake.trends.signals import compute_signals, lift, top_movers

    segs = _split(segment)
    src = load_source(lake, collection, table, time, _split(attribute), segs, id_column)
    s = _series(src, by, segs, min_support, weighted)
    sig = compute_signals(s, by)
    rising, falling = top_movers(sig, top)
    lifts = lift(src.obs, min_support=lift_min, top=top)
    if json_out:
        from visionlake.trends.jsonsafe import clean, records
        from visionlake.trends.words import describe

        def recs(df: pd.DataFrame) -> list[dict]:
            out = records(df)
            for r in out:
                r["summary"] = describe(r, None, by)
            return out

        print_json(clean({"by": by, "labels": sig["label"].value_counts().to_dict(), "rising": recs(rising),
                          "falling": recs(falling), "signals": recs(sig.head(top)), "lift": records(lifts)}))
        return
    for title, df in (("rising", rising), ("falling", falling), ("all (top)", sig.head(top))):
        t = cli_table("unique_id", "label", "last_share", "change", "change_p", "slope_per_year", "trend_p",
                      keys=("unique_id",), numeric=("last_share", "change", "change_p", "slope_per_year", "trend_p"),
                      title=title)
        for _, r in df.iterrows():
            t.add_row(str(r["unique_id"]), r["label"], *("" if pd.isna(r[c]) else f"{r[c]:.3f}" for c in
                      ("last_share", "change", "change_p", "slope_per_year", "trend_p")))
        console.print(t)
    t = cli_table("items", "looks", "lift", keys=("items",), numeric=("looks", "lift"), title="co-occurrence lift")
    for _, r in lifts.iterrows():
        t.add_row(r["items"], str(r["looks"]), f"{r['lift']:.2f}")
    console.print(t)


@app.command("forecast")
def forecast_cmd(
    collection: CollectionOpt = None, table: TableOpt = None, time: TimeOpt = "time",
    attribute: AttrOpt = None, by: ByOpt = "week", segment: SegOpt = None, min_support: SupportOpt = 10,
    id_column: IdOpt = None,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Periods to forecast.")] = 52,
    model: Annotated[str, typer.Option("--model", help=f"{', '.join(MODEL_NAMES)}.")] = "default",
    top: Annotated[int | None, typer.Option("--top", help="Only the N series with most looks.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write forecasts (.csv or .parquet).")] = None,
    lake: LakeOption = None, json_out: JsonOption = False,
) -> None:
    """Forecast each series with 80/95% prediction intervals."""
    from visionlake.trends.pipeline import forecast_series

    segs = _split(segment)
    src = load_source(lake, collection, table, time, _split(attribute), segs, id_column)
    s = _series(src, by, segs, min_support, False)
    ids = None
    if top:
        ids = list(s.groupby("unique_id")["count"].sum().sort_values(ascending=False).head(top).index)
    fc = forecast_series(s, horizon, model, by, ids)
    _write(fc, out)
    if json_out:
        from visionlake.trends.jsonsafe import clean, records

        body = {"model": model, "choice": fc.attrs.get("choice"), "weights": fc.attrs.get("weights", {}),
                "cv_mase": fc.attrs.get("cv_mase"), "horizon": horizon, "rows": records(fc)}
        if clean(body["cv_mase"]) is None:
            body["cv_reason"] = ("not cross-validated: a reference model, or a history too short for a window "
                                 "inside it (intervals then widen like a random walk)")
        print_json(clean(body))
        return
    n_series = fc["unique_id"].nunique()
    shown = min(40, n_series)
    t = cli_table("unique_id", "ds", "mean", "lo-95", "hi-95", keys=("unique_id",),
                  numeric=("ds", "mean", "lo-95", "hi-95"),
                  title=f"{n_series} series, horizon {horizon} ({model}): only the last step (step {horizon}) of "
                        f"{'each' if shown == n_series else f'the first {shown}'} series; "
                        "--json or --out has every step")
    for _, r in fc.groupby("unique_id").tail(1).head(40).iterrows():
        t.add_row(r["unique_id"], f"{r['ds']:%Y-%m-%d}", f"{r['mean']:.3f}", f"{r['lo-95']:.3f}",
                  f"{r['hi-95']:.3f}")
    console.print(t)


@app.command("report")
def report_cmd(
    out: Annotated[Path | None, typer.Option(
        "--out", help="HTML file; a PDF is written next to it (default reports/trends-<source>.html, "
                      "a folder git ignores).")] = None,
    collection: CollectionOpt = None, table: TableOpt = None, time: TimeOpt = "time",
    attribute: AttrOpt = None, by: ByOpt = "month", segment: SegOpt = None, min_support: SupportOpt = 10,
    weighted: WeightOpt = False, id_column: IdOpt = None, images: ThumbOpt = None,
    horizon: Annotated[int, typer.Option("--horizon", min=1)] = 12,
    top: Annotated[int, typer.Option("--top", min=1, help="Rising/falling values shown.")] = 6,
    model: Annotated[str, typer.Option("--model", help=f"{', '.join(MODEL_NAMES)}.")] = "default",
    no_pdf: Annotated[bool, typer.Option("--no-pdf", help="Skip the PDF.")] = False,
    lake: LakeOption = None, json_out: JsonOption = False,
) -> None:
    """HTML (+PDF) report: top rising/falling values, curves with bands, forecasts, thumbnails."""
    from visionlake.trends.pipeline import forecast_series
    from visionlake.trends.report import build_report, report_ids
    from visionlake.trends.signals import compute_signals, lift

    segs = _split(segment)
    src = load_source(lake, collection, table, time, _split(attribute), segs, id_column, images)
    s = _series(src, by, segs, min_support, weighted)
    sig = compute_signals(s, by)
    ids = report_ids(sig, top)
    fc = None
    if ids and s["ds"].nunique() >= 2:
        fc = forecast_series(s, horizon, model, by, ids)
    if out is None:
        out = default_report_path(src.name)
    res = build_report(s, sig, fc, out, obs=src.obs, title=f"Trends: {src.name}", top=top,
                       thumb_root=src.thumb_root, lifts=lift(src.obs, min_support=max(5, min_support)),
                       pdf=not no_pdf)
    if json_out:
        print_json(res)
    else:
        console.print(f"wrote {res['html']}" + (f" and {res['pdf']}" if "pdf" in res else ""))
