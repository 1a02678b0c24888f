"""One sentence function: words only say what the signals table says; named colours get their colour."""

from __future__ import annotations

import numpy as np
import pandas as pd

from visionlake.trends.signals import compute_signals
from visionlake.trends.words import colour_of, describe, section_of


def sig(**kw) -> dict:
    base = {"unique_id": "major_color=Plaid", "attribute": "clothing_pattern", "value": "Plaid",
            "label": "stable", "last_share": 0.04, "last": pd.Timestamp("2015-06-01"), "slope_per_year": -0.009,
            "trend_p": 0.4, "confidence": 0.95, "looks": 300, "periods": 24, "supported_periods": 24}
    base.update(kw)
    return base


def test_direction_only_with_a_significant_trend() -> None:
    stable = describe(sig())
    assert "rising" not in stable and "falling" not in stable and "No trend at 95% confidence" in stable
    up = describe(sig(label="rising", slope_per_year=0.05, trend_p=0.001))
    assert "is rising" in up and "+5.0 points per year" in up and "95% confidence" in up
    down = describe(sig(label="declining", slope_per_year=-0.05, trend_p=0.01))
    assert "is falling" in down and "-5.0 points" in down


def test_low_support_is_not_narrated() -> None:
    text = describe(sig(label="insufficient", supported_periods=2, periods=10, looks=14))
    assert "low support" in text and "2 of 10" in text and "rising" not in text and "trend" in text
    assert section_of("insufficient") == "Low support" and section_of("fading") == "Falling"
    assert section_of("stable") is None


def test_never_prints_nan() -> None:
    fc = pd.DataFrame({"ds": [pd.Timestamp("2016-01-01")], "mean": [0.1], "lo-95": [np.nan], "hi-95": [np.nan]})
    text = describe(sig(last_share=np.nan, trend_p=np.nan, slope_per_year=np.nan), fc)
    assert "nan" not in text.lower() and "Forecast for Jan 2016: 10%." in text


def test_colours_of_colour_values_only() -> None:
    assert colour_of("major_color", "White") == ("#ffffff", "#555555")  # white, readable outline
    assert colour_of("baseColour", "Navy Blue")[0] == "#1b2a5c"
    assert colour_of("colour", "black") == ("#111111", "#111111")
    assert colour_of("fabric", "white") is None and colour_of("major_color", "More than 1 color") is None


def test_low_support_series_never_gets_a_direction() -> None:
    rows = []
    for m in range(12):  # a clear rise, but only 3 of 12 months have enough looks
        n = 30 if m in (0, 5, 11) else 2
        rows.append({"unique_id": "c=x", "attribute": "c", "value": "x", "ds": pd.Timestamp("2020-01-01")
                     + pd.DateOffset(months=m), "y": m / 12, "count": round(m / 12 * n), "n": n,
                     "lo": 0.0, "hi": 1.0, "low_support": n < 10})
    s = pd.DataFrame(rows)
    out = compute_signals(s, "month")
    assert out.loc[0, "label"] == "insufficient" and out.loc[0, "support"] == "low"
