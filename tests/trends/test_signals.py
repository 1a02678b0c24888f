"""Signals: labels on curves with a known shape, tests, co-occurrence lift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from visionlake.errors import BadInput
from visionlake.trends.observations import compute_series, long_observations
from visionlake.trends.signals import compute_signals, lift, mann_kendall, theil_sen, top_movers, two_proportion_p


def test_tests_on_known_curves() -> None:
    tau, p = mann_kendall(np.arange(20.0))
    assert tau == pytest.approx(1.0) and p < 1e-6
    assert theil_sen(np.arange(10) * 0.5 + np.r_[0, 0, 0, 0, 9, 0, 0, 0, 0, 0]) == pytest.approx(0.5)
    assert two_proportion_p(10, 100, 30, 100) < 0.01
    assert two_proportion_p(2, 5, 3, 6) > 0.5
    assert mann_kendall(np.zeros(10)) == (0.0, 1.0)


def test_labels(looks: pd.DataFrame) -> None:
    obs = long_observations(looks, "created", ["fabric", "knit"], [], "look")
    s = compute_series(obs, by="month", min_support=10)
    sig = compute_signals(s).set_index("unique_id")
    assert sig.loc["fabric=satin", "label"] in ("rising", "emerging")
    assert sig.loc["fabric=denim", "label"] in ("declining", "fading")
    assert sig.loc["knit=wool", "label"] == "seasonal"
    assert sig.loc["fabric=satin", "slope_per_year"] > 0.1
    rising, falling = top_movers(sig.reset_index(), 5)
    assert "fabric=satin" in set(rising["unique_id"]) and "fabric=denim" in set(falling["unique_id"])


def test_insufficient_and_all_zero() -> None:
    obs = pd.DataFrame({"look_id": range(6), "time": ["2024-01-01", "2024-02-01", "2024-03-01"] * 2,
                        "attribute": "colour", "value": ["red"] * 3 + ["blue"] * 3})
    s = compute_series(obs, by="month", min_support=1)
    sig = compute_signals(s)
    assert set(sig["label"]) == {"insufficient"}  # three periods are too few for a trend
    with pytest.raises(BadInput):
        compute_signals(s.iloc[:0])


def test_lift_finds_pairs_and_triples(looks: pd.DataFrame) -> None:
    obs = long_observations(looks, "created", ["fabric", "length", "knit"], [], "look")
    out = lift(obs, min_support=20)
    top = out.iloc[0]
    assert top["lift"] > 1.5
    pair = out[out["items"].str.contains("fabric=satin") & out["items"].str.contains("length=midi")
               & (out["size"] == 2)]
    assert not pair.empty and pair["lift"].iloc[0] > 1.5
    assert (out["size"] == 3).any()
