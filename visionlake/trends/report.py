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
    """Plain words: where the value stands, where it is going, and how sure we are."""
    name = str(sig.get("value", sig["unique_id"]))
    attr = str(sig.get("attribute", ""))
    where = ""
    uid = str(sig["unique_id"])
    if "|" in uid:
        where = " in " + ", ".join(p.split("=", 1)[1] for p in uid.split("|")[:-1])
    label = sig["label"]
    last = sig.get("last_share", np.nan)
    words = {
        "emerging": "is emerging: still a small share but growing faster and faster",
        "rising": "is rising steadily",
        "stable": "is stable",
        "seasonal": "comes and goes with the seasons",
        "declining": "is declining",
        "fading": "is fading: well below its peak and still falling",
        "insufficient": "has too few looks to call a trend",
    }[label]
    text = f"{name.capitalize()} ({attr}){where} {words}."
    if np.isfinite(last):
        text += f" Latest share {last:.0%} of looks ({_fmt_period(sig['last'], by)})"
        yr = sig.get("slope_per_year", 0.0)
        if label != "insufficient" and abs(yr) > 0:
            text += f", trend {yr * 100:+.1f} points per year"
        p = sig.get("trend_p", 1.0)
        text += f" (Mann-Kendall p={p:.3f})." if np.isfinite(p) else "."
    if fc is not None and not fc.empty:
        end = fc.iloc[-1]
        text += (f" Forecast for {_fmt_period(end['ds'], by)}: {end['mean']:.0%} "
                 f"(95% interval {end['lo-95']:.0%} to {end['hi-95']:.0%}).")
    return text


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
def plotly_figure(hist: pd.DataFrame, fc: pd.DataFrame | None, title: str):
    """History with Wilson band, forecast with 80/95% bands (Plotly)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    h = hist.sort_values("ds")
    b = h[h["n"] > 0]  # periods without looks have no interval; a polygon through NaN breaks
    x = list(b["ds"]) + list(b["ds"][::-1])
    fig.add_trace(go.Scatter(x=x, y=list(b["hi"]) + list(b["lo"][::-1]), fill="toself", name="95% CI",
                             mode="lines", line={"width": 0}, fillcolor="rgba(31,119,180,0.18)",
                             hoverinfo="skip"))
    low = h["low_support"].to_numpy()
    fig.add_trace(go.Scatter(x=h["ds"], y=h["y"], mode="lines+markers", name="share",
                             line={"color": "#1f77b4"},
                             marker={"color": np.where(low, "#bbbbbb", "#1f77b4").tolist(), "size": 5},
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
    h = h[h["n"] > 0] if "n" in h else h
    ax.fill_between(h["ds"], h["lo"], h["hi"], alpha=0.2, color="#1f77b4", label="95% CI")
    ax.plot(h["ds"], h["y"], marker="o", ms=3, color="#1f77b4", label="share")
    if fc is not None and not fc.empty:
        f = fc.sort_values("ds")
        ax.fill_between(f["ds"], f["lo-95"], f["hi-95"], alpha=0.15, color="#ff7f0e", label="forecast 95%")
        ax.plot(f["ds"], f["mean"], ls="--", color="#ff7f0e", label="forecast")
    ax.set_title(title, fontsize=11)
    ax.yaxis.set_major_formatter(lambda v, _p: f"{v:.0%}")
    ax.legend(fontsize=7, loc="upper left")
    fig.text(0.05, 0.01, "\n".join(_wrap(text, 120)), fontsize=7, va="bottom")
    fig.subplots_adjust(bottom=0.25)
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

    from visionlake.trends.signals import top_movers

    by = series.attrs.get("by", "month")
    segments = list(series.attrs.get("segments", []))
    rising, falling = top_movers(signals, top)
    if rising.empty and falling.empty:
        # nothing significant: show the largest series so the report is never empty
        ok = signals[signals["label"] != "insufficient"]
        rising = (ok if not ok.empty else signals).sort_values("looks", ascending=False).head(top)
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='muted'>{series['unique_id'].nunique()} series, {series['ds'].nunique()} {by}s "
             f"({_fmt_period(series['ds'].min(), by)} to {_fmt_period(series['ds'].max(), by)}); shares of "
             f"looks with Wilson 95% intervals; grey points have fewer than "
             f"{series.attrs.get('min_support', 10)} looks (low support).</p>"]
    labels = signals["label"].value_counts()
    parts.append("<p>" + ", ".join(f"{k}: {v}" for k, v in labels.items()) + "</p>")
    pdf_pages: list[tuple[pd.DataFrame, pd.DataFrame | None, str, str]] = []
    n_fig = 0
    for heading, block in (("Rising", rising), ("Falling", falling)):
        if block.empty:
            continue
        parts.append(f"<h2>{heading}</h2>")
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
            parts.append(f"<div class='card'><h3>{html.escape(uid)}<span class='tag'>{sig['label']}</span></h3>"
                         f"<p>{html.escape(text)}</p>{div}{thumbs_html}{seg_html}</div>")
            pdf_pages.append((hist, fc, uid, text))
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
            for hist, fc, uid, text in pdf_pages:
                _mpl_page(pp, hist, fc, uid, text)
            if not pdf_pages:
                _mpl_page(pp, series.head(0), None, title, "no series")
        result["pdf"] = str(pdf_path)
    return result
