"""A report a buyer can read: HTML (interactive Plotly, JS inlined from the package) and a PDF.

For the strongest rising and falling attribute values: the curve with its Wilson 95% band, the
forecast with 80/95% intervals, a one-paragraph plain-language summary, example thumbnails of looks
showing the value, and a per-segment table. Everything is self-contained in one file: no CDN, images
as data URIs, so the report opens offline and can be mailed.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from visionlake.trends.observations import season_label

MAX_THUMBS = 4


# ----------------------------------------------------------------------------------------- words
def _fmt_period(ds: pd.Timestamp, by: str) -> str:
    if by == "season":
        return season_label(ds)
    if by == "year":
        return str(ds.year)
    if by == "week":
        return f"week of {ds:%d %b %Y}"
    return f"{ds:%b %Y}"


def summary_sentence(sig: pd.Series, fc: pd.DataFrame | None, by: str) -> str:
    """Plain words about one signal row: :func:`visionlake.trends.words.describe` (one wording everywhere)."""
    from visionlake.trends.words import describe

    return describe(sig, fc, by)


def report_sections(signals: pd.DataFrame, top: int) -> dict[str, pd.DataFrame]:
    """Rows of the signals table shown under each heading, strongest first (the same table the API returns)."""
    from visionlake.trends.words import LOW_SUPPORT, SECTIONS

    order = {"Rising": ("slope", False), "Emerging": ("slope", False), "Falling": ("slope", True),
             "Seasonal": ("seasonal_strength", False)}
    out = {}
    for name, labels in SECTIONS.items():
        col, asc = order[name]
        out[name] = signals[signals["label"].isin(labels)].sort_values(col, ascending=asc).head(top)
    out[LOW_SUPPORT] = signals[signals["label"] == "insufficient"].sort_values("looks", ascending=False).head(
        max(top, 10))
    return out


def report_ids(signals: pd.DataFrame, top: int) -> list[str]:
    """The series a report draws (and so forecasts): every row of the narrated sections."""
    from visionlake.trends.words import LOW_SUPPORT

    ids: list[str] = []
    for name, block in report_sections(signals, top).items():
        if name != LOW_SUPPORT:
            ids += [i for i in block["unique_id"] if i not in ids]
    return ids


# ----------------------------------------------------------------------------------------- images
def _data_uri(path: Path, size: int = 160) -> str | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
    except Exception:  # noqa: BLE001 - a missing or broken thumbnail must not break the report
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnails_for(obs: pd.DataFrame | None, sig: pd.Series, segments: list[str], root: Path | None,
                   n: int = MAX_THUMBS) -> list[str]:
    """Data URIs of the most recent looks showing the series' value (and segment)."""
    if obs is None or "thumbnail" not in obs.columns:
        return []
    sel = obs[(obs["attribute"] == sig.get("attribute")) & (obs["value"].astype(str) == str(sig.get("value")))]
    for s in segments:
        if s in sel.columns and s in sig.index:
            sel = sel[sel[s].astype(str) == str(sig[s])]
    sel = sel[sel["thumbnail"].notna()]
    if "confidence" in sel.columns:
        sel = sel.sort_values("confidence", ascending=False)
    out: list[str] = []
    for t in sel["thumbnail"].drop_duplicates().head(500):
        p = Path(str(t))
        if not p.is_absolute() and root is not None:
            p = root / p
        if not p.exists():
            continue
        uri = _data_uri(p)
        if uri:
            out.append(uri)
        if len(out) >= n:
            break
    return out


# ----------------------------------------------------------------------------------------- charts
def supported_runs(hist: pd.DataFrame) -> list[pd.DataFrame]:
    """Consecutive periods with looks: an interval band is drawn per run, never across an empty period."""
    h = hist.sort_values("ds").reset_index(drop=True)
    has = (h["n"] > 0).to_numpy() if "n" in h else np.ones(len(h), bool)
    runs, start = [], None
    for i, ok in enumerate([*has, False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append(h.iloc[start:i])
            start = None
    return runs


def line_colour(hist: pd.DataFrame, default: str = "#1f77b4") -> tuple[str, str]:
    """(line, outline) colour of a series: its own colour when the value is a named colour."""
    from visionlake.trends.words import colour_of

    if hist.empty or "attribute" not in hist:
        return default, default
    return colour_of(hist["attribute"].iloc[0], hist["value"].iloc[0]) or (default, default)


def _rgba(hexa: str, alpha: float) -> str:
    n = int(hexa.lstrip("#"), 16)
    return f"rgba({(n >> 16) & 255},{(n >> 8) & 255},{n & 255},{alpha})"


def plotly_figure(hist: pd.DataFrame, fc: pd.DataFrame | None, title: str):
    """History with Wilson bands (one per run of supported periods), forecast with 80/95% bands (Plotly)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    h = hist.sort_values("ds")
    colour, outline = line_colour(h)
    band = _rgba(colour if colour != "#ffffff" else "#888888", 0.18)
    for k, run in enumerate(supported_runs(h)):
        fig.add_trace(go.Scatter(x=list(run["ds"]) + list(run["ds"][::-1]),
                                 y=list(run["hi"]) + list(run["lo"][::-1]), fill="toself", name="95% CI",
                                 mode="lines", line={"width": 0}, fillcolor=band, hoverinfo="skip",
                                 legendgroup="ci", showlegend=k == 0))
    y = h["y"].where(h["n"] > 0) if "n" in h else h["y"]  # no looks: a gap in the line, not a zero
    low = h["low_support"].to_numpy()
    if outline != colour:
        fig.add_trace(go.Scatter(x=h["ds"], y=y, mode="lines", line={"color": outline, "width": 5},
                                 hoverinfo="skip", showlegend=False, connectgaps=False))
    fig.add_trace(go.Scatter(x=h["ds"], y=y, mode="lines+markers", name="share", connectgaps=False,
                             line={"color": colour, "width": 2.5},
                             marker={"color": np.where(low, "#bbbbbb", colour).tolist(), "size": 6,
                                     "line": {"color": outline, "width": 1}},
                             customdata=np.stack([h["count"], h["n"]], axis=1),
                             hovertemplate="%{x|%Y-%m-%d}: %{y:.1%} (%{customdata[0]} of %{customdata[1]})"))
    if fc is not None and not fc.empty:
        f = fc.sort_values("ds")
        for lv, alpha in (("95", 0.12), ("80", 0.22)):
            if f"lo-{lv}" in f:
                fig.add_trace(go.Scatter(x=list(f["ds"]) + list(f["ds"][::-1]),
                                         y=list(f[f"hi-{lv}"]) + list(f[f"lo-{lv}"][::-1]), fill="toself", mode="lines",
                                         fillcolor=f"rgba(255,127,14,{alpha})", line={"width": 0},
                                         name=f"forecast {lv}%", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=f["ds"], y=f["mean"], mode="lines", name="forecast",
                                 line={"color": "#ff7f0e", "dash": "dash"}))
    fig.update_layout(title=title, height=320, margin={"l": 50, "r": 20, "t": 40, "b": 30},
                      yaxis={"tickformat": ".0%", "rangemode": "tozero"}, template="plotly_white",
                      legend={"orientation": "h", "y": -0.15})
    return fig


def _mpl_page(pdf, hist: pd.DataFrame, fc: pd.DataFrame | None, title: str, text: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.27, 4.5))
    h = hist.sort_values("ds")
    colour, outline = line_colour(h) if len(h) else ("#1f77b4", "#1f77b4")
    band = colour if colour != "#ffffff" else "#888888"
    for k, run in enumerate(supported_runs(h) if len(h) else []):
        ax.fill_between(run["ds"], run["lo"], run["hi"], alpha=0.2, color=band, label="95% CI" if k == 0 else None)
    if len(h):
        y = h["y"].where(h["n"] > 0) if "n" in h else h["y"]
        if outline != colour:
            ax.plot(h["ds"], y, color=outline, lw=3.5)
        ax.plot(h["ds"], y, marker="o", ms=3, color=colour, mec=outline, lw=2, label="share")
    if fc is not None and not fc.empty:
        f = fc.sort_values("ds")
        ax.fill_between(f["ds"], f["lo-95"], f["hi-95"], alpha=0.15, color="#ff7f0e", label="forecast 95%")
        ax.plot(f["ds"], f["mean"], ls="--", color="#ff7f0e", label="forecast")
    ax.set_title(title, fontsize=11)
    ax.yaxis.set_major_formatter(lambda v, _p: f"{v:.0%}")
    if len(h):
        ax.legend(fontsize=7, loc="upper left")
    fig.text(0.05, 0.01, "\n".join(_wrap(text, 120)), fontsize=7, va="bottom")
    fig.subplots_adjust(bottom=0.25)
    pdf.savefig(fig)
    plt.close(fig)


def _mpl_text_page(pdf, lines: list[str]) -> None:
    """A page of plain text: the sections of the report and what each lists."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.27, 4.5))
    wrapped = [w for ln in lines for w in (_wrap(ln, 110) or [""])]
    fig.text(0.05, 0.95, "\n".join(wrapped), fontsize=8, va="top")
    pdf.savefig(fig)
    plt.close(fig)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


# ----------------------------------------------------------------------------------------- report
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:24px} h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.card{border:1px solid #e3e3e3;border-radius:8px;padding:12px 16px;margin:14px 0}
.card p{margin:6px 0} .thumbs img{height:96px;margin-right:6px;border-radius:4px;border:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px}
th{background:#f6f6f6} .low{color:#999} .tag{display:inline-block;padding:1px 8px;border-radius:10px;
background:#eef;font-size:12px;margin-left:6px} .muted{color:#777;font-size:13px}
"""


def _table(df: pd.DataFrame, low_col: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns if c != low_col)
    rows = []
    for _, r in df.iterrows():
        cls = ' class="low"' if low_col and bool(r[low_col]) else ""
        cells = []
        for c in df.columns:
            if c == low_col:
                continue
            v = r[c]
            if isinstance(v, float):
                v = f"{v:.3f}" if np.isfinite(v) else ""
            cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def segment_table(series: pd.DataFrame, sig: pd.Series, segments: list[str]) -> pd.DataFrame | None:
    """Share of the value per segment over the whole period, low support marked (never hidden)."""
    if not segments:
        return None
    sel = series[(series["attribute"] == sig["attribute"]) & (series["value"] == sig["value"])]
    if sel.empty:
        return None
    g = sel.groupby(segments, observed=True).agg(looks=("n", "sum"), count=("count", "sum")).reset_index()
    g["share"] = g["count"] / g["looks"].where(g["looks"] > 0)
    from visionlake.trends.observations import wilson_interval

    g["lo"], g["hi"] = wilson_interval(g["count"].to_numpy(), g["looks"].to_numpy())
    ms = int(series.attrs.get("min_support", 10))
    g["low_support"] = g["looks"] < ms
    g["note"] = np.where(g["low_support"], f"low support (< {ms} looks)", "")
    return g.sort_values("share", ascending=False).head(25)


def build_report(series: pd.DataFrame, signals: pd.DataFrame, forecasts: pd.DataFrame | None, out: Path,
                 obs: pd.DataFrame | None = None, title: str = "Trend report", top: int = 6,
                 thumb_root: Path | None = None, lifts: pd.DataFrame | None = None,
                 pdf: bool = True) -> dict[str, str]:
    """Write ``out`` (HTML) and ``out.with_suffix('.pdf')``; return their paths."""
    from plotly.offline import get_plotlyjs

    from visionlake.trends.words import LOW_SUPPORT, SECTIONS

    by = series.attrs.get("by", "month")
    segments = list(series.attrs.get("segments", []))
    sections = report_sections(signals, top)
    conf = float(signals["confidence"].iloc[0]) if "confidence" in signals and len(signals) else 0.95
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='muted'>{series['unique_id'].nunique()} series, {series['ds'].nunique()} {by}s "
             f"({_fmt_period(series['ds'].min(), by)} to {_fmt_period(series['ds'].max(), by)}); shares of "
             f"looks with Wilson 95% intervals; grey points have fewer than "
             f"{series.attrs.get('min_support', 10)} looks (low support). A value is called rising or falling "
             f"only when its Mann-Kendall test is significant at {conf:.0%} confidence and its support is "
             f"adequate.</p>"]
    labels = signals["label"].value_counts()
    parts.append("<p>" + ", ".join(f"{k}: {v}" for k, v in labels.items()) + "</p>")
    pdf_pages: list[tuple[pd.DataFrame, pd.DataFrame | None, str, str]] = []
    n_fig = 0
    for heading in SECTIONS:
        block = sections[heading]
        parts.append(f"<section class='trend-section' data-section='{heading}'><h2>{heading}</h2>")
        if block.empty:
            parts.append(f"<p class='muted none'>No value is {heading.lower()} at {conf:.0%} confidence with "
                         "adequate support.</p></section>")
            continue
        for _, sig in block.iterrows():
            uid = sig["unique_id"]
            hist = series[series["unique_id"] == uid]
            fc = None if forecasts is None else forecasts[forecasts["unique_id"] == uid]
            text = summary_sentence(sig, fc, by)
            fig = plotly_figure(hist, fc, uid)
            div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart{n_fig}",
                              config={"displaylogo": False, "responsive": True})
            n_fig += 1
            thumbs = thumbnails_for(obs, sig, segments, thumb_root)
            thumbs_html = ("<div class='thumbs'>" + "".join(f"<img src='{u}' alt='example look'>" for u in thumbs)
                           + "</div>") if thumbs else "<p class='muted'>no example images in this source</p>"
            seg = segment_table(series, sig, segments)
            seg_html = _table(seg[[*segments, "looks", "count", "share", "lo", "hi", "note", "low_support"]],
                              low_col="low_support") if seg is not None else ""
            colour = line_colour(hist)[0]
            parts.append(f"<div class='card' data-unique-id='{html.escape(str(uid), quote=True)}' "
                         f"data-label='{sig['label']}' data-colour='{colour}'>"
                         f"<h3>{html.escape(str(uid))}<span class='tag'>{sig['label']}</span></h3>"
                         f"<p class='summary'>{html.escape(text)}</p>{div}{thumbs_html}{seg_html}</div>")
            pdf_pages.append((hist, fc, f"{heading}: {uid}", text))
        parts.append("</section>")
    low = sections[LOW_SUPPORT]
    parts.append(f"<section class='trend-section' data-section='{LOW_SUPPORT}'><h2>{LOW_SUPPORT}</h2>")
    if low.empty:
        parts.append("<p class='muted none'>Every value has adequate support.</p>")
    else:
        parts.append("<p class='muted'>Too few looks to call a trend; shown so that nothing is hidden, "
                     "never narrated.</p>")
        cols = [c for c in ("unique_id", "looks", "periods", "supported_periods", "share") if c in low]
        parts.append(_table(low[cols]))
    parts.append("</section>")
    if lifts is not None and not lifts.empty:
        parts.append("<h2>Values that go together (co-occurrence lift)</h2>")
        parts.append(_table(lifts.head(15)))
    cols = [c for c in ("unique_id", "label", "share", "last_share", "slope_per_year", "trend_p",
                        "seasonal_strength", "looks") if c in signals.columns]
    parts.append("<h2>All series</h2>" + _table(signals[cols].head(200)))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            + "".join(parts) + "</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    result = {"html": str(out), "charts": str(n_fig)}
    if pdf:
        import matplotlib
        from matplotlib.backends.backend_pdf import PdfPages

        matplotlib.use("Agg")
        pdf_path = out.with_suffix(".pdf")
        with PdfPages(pdf_path) as pp:
            lines = [title, ""]
            for heading in (*SECTIONS, LOW_SUPPORT):
                ids = list(sections[heading]["unique_id"])
                lines.append(f"{heading}: " + (", ".join(map(str, ids[:12])) + (" ..." if len(ids) > 12 else "")
                                               if ids else "none"))
            _mpl_text_page(pp, lines)
            for hist, fc, uid, text in pdf_pages:
                _mpl_page(pp, hist, fc, uid, text)
            if not pdf_pages:
                _mpl_page(pp, series.head(0), None, title, "no series")
        result["pdf"] = str(pdf_path)
    return result
