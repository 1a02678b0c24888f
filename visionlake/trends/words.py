"""The one place where trend numbers become words, and colour names become colours.

Why one function: the CLI, the API, the HTML report and the PDF used to phrase signals separately and
drifted apart ("rising steadily" for a flat value with three looks, "nan% to nan%"). Everything that
prints a sentence about a series now calls :func:`describe`, which only says what the signals table
says: a direction only for a label that passed the trend test with adequate support, a forecast only
with finite bounds, and "low support" instead of a story when there is too little data.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

#: Report sections in order, with the labels of the signals table each one lists.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Rising": ("rising",),
    "Emerging": ("emerging",),
    "Falling": ("declining", "fading"),
    "Seasonal": ("seasonal",),
}
LOW_SUPPORT = "Low support"

_PHRASE = {
    "emerging": "is emerging: still a small share, rising faster and faster",
    "rising": "is rising",
    "stable": "shows no significant trend",
    "seasonal": "comes and goes with the seasons, with no significant trend",
    "declining": "is falling",
    "fading": "is fading: falling, and well below its peak",
}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _period(ds: Any, by: str) -> str:
    ts = pd.Timestamp(ds)
    if by == "season":
        name = {12: "Winter", 1: "Winter", 2: "Winter", 3: "Spring", 4: "Spring", 5: "Spring", 6: "Summer",
                7: "Summer", 8: "Summer"}.get(ts.month, "Fall")
        return f"{name} {ts.year}"
    if by == "year":
        return str(ts.year)
    if by == "week":
        return f"week of {ts:%d %b %Y}"
    return f"{ts:%b %Y}"


def section_of(label: str) -> str | None:
    """The report section a label belongs to (None: stable values are only in the full table)."""
    if label == "insufficient":
        return LOW_SUPPORT
    return next((s for s, labels in SECTIONS.items() if label in labels), None)


def describe(sig: Any, forecast: pd.DataFrame | None = None, by: str = "month") -> str:
    """One paragraph about one row of the signals table (a dict or a Series), and its forecast rows.

    Never prints NaN: numbers that do not exist are left out of the sentence.
    """
    get = sig.get
    name = str(get("value") or get("unique_id"))
    attr = get("attribute")
    uid = str(get("unique_id", ""))
    where = ""
    if "|" in uid:
        where = " in " + ", ".join(p.split("=", 1)[-1] for p in uid.split("|")[:-1])
    head = f"{name[:1].upper()}{name[1:]}" + (f" ({attr})" if attr else "") + where
    label = str(get("label", "insufficient"))
    looks = _num(get("looks"))
    if label == "insufficient":
        sup, per = _num(get("supported_periods")), _num(get("periods"))
        text = f"{head}: low support, too few looks to call a trend"
        if sup is not None and per is not None:
            text += f" ({int(sup)} of {int(per)} {by}s have enough looks"
            text += f", {int(looks)} looks in all)." if looks is not None else ")."
        else:
            text += "."
        return text
    conf = _num(get("confidence")) or 0.95
    text = f"{head} {_PHRASE.get(label, 'shows no significant trend')}."
    last = _num(get("last_share"))
    if last is not None and get("last") is not None:
        text += f" Latest share {last:.0%} of looks ({_period(get('last'), by)})."
    slope, p = _num(get("slope_per_year")), _num(get("trend_p"))
    if label in ("rising", "emerging", "declining", "fading") and slope is not None and p is not None:
        text += (f" Trend {slope * 100:+.1f} points per year, significant at {conf:.0%} confidence "
                 f"(Mann-Kendall p={p:.3f}).")
    elif p is not None:
        text += f" No trend at {conf:.0%} confidence (Mann-Kendall p={p:.3f})."
    if forecast is not None and len(forecast):
        end = forecast.sort_values("ds").iloc[-1]
        mean, lo, hi = _num(end.get("mean")), _num(end.get("lo-95")), _num(end.get("hi-95"))
        if mean is not None:
            text += f" Forecast for {_period(end['ds'], by)}: {mean:.0%}"
            text += f" (95% interval {lo:.0%} to {hi:.0%})." if lo is not None and hi is not None else "."
    return text


# ----------------------------------------------------------------------------------------- colours
#: Colour names as labelled in StreetStyle, the Myntra catalogue and the taxonomy -> (line, outline).
#: White and other very light colours get a dark outline so that the line stays readable on white.
NAMED_COLOURS: dict[str, str] = {
    "black": "#111111", "white": "#ffffff", "off white": "#f5f3ea", "cream": "#fffdd0", "beige": "#d9c7a0",
    "grey": "#8c8c8c", "gray": "#8c8c8c", "charcoal": "#3f4347", "silver": "#c0c0c0", "red": "#d62728",
    "maroon": "#800000", "burgundy": "#7b1e3a", "pink": "#f07ab0", "magenta": "#c2188e", "purple": "#7e3fa5",
    "lavender": "#b497d6", "blue": "#1f5fd6", "navy blue": "#1b2a5c", "navy": "#1b2a5c", "cyan": "#17becf",
    "teal": "#138a8a", "turquoise blue": "#30c5c5", "green": "#2ca02c", "olive": "#7a7a2a",
    "lime green": "#8bd346", "sea green": "#2e8b57", "yellow": "#f2d30f", "mustard": "#d4a017",
    "gold": "#d4af37", "orange": "#ff7f0e", "peach": "#ffb38a", "coral": "#ff6f61", "rust": "#b7410e",
    "brown": "#8b5a2b", "tan": "#d2b48c", "khaki": "#c3b091", "coffee brown": "#4b3621", "mauve": "#c59fc9",
    "copper": "#b87333", "bronze": "#cd7f32", "nude": "#e3bc9a", "skin": "#e8b48f", "taupe": "#8b8589",
}
_LIGHT = {"white", "off white", "cream", "beige", "silver", "yellow", "peach", "nude", "skin", "khaki", "tan",
          "lime green", "lavender", "gold"}


def is_colour_attribute(attribute: Any) -> bool:
    """Attributes whose values are colour names (colour, major_color, baseColour...)."""
    return "colo" in str(attribute or "").lower()


def colour_of(attribute: Any, value: Any) -> tuple[str, str] | None:
    """(line colour, outline colour) for a named colour value of a colour attribute, else None."""
    if not is_colour_attribute(attribute):
        return None
    key = str(value or "").strip().lower()
    hexa = NAMED_COLOURS.get(key)
    if hexa is None:
        return None
    return hexa, ("#555555" if key in _LIGHT else hexa)
