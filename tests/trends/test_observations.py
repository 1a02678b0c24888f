"""Observations -> tidy share series: hand computations, Wilson intervals, support, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from visionlake.errors import BadInput
from visionlake.trends.observations import (
    compute_series,
    long_observations,
    parse_time,
    period_start,
    read_table,
    wilson_interval,
)


def test_wilson_known_values() -> None:
    lo, hi = wilson_interval(np.array([5.0, 0.0, 10.0]), np.array([10.0, 10.0, 10.0]))
    # 5/10: the textbook Wilson interval is (0.2366, 0.7634)
    assert lo[0] == pytest.approx(0.2366, abs=1e-4) and hi[0] == pytest.approx(0.7634, abs=1e-4)
    assert lo[1] == 0.0 and hi[1] == pytest.approx(0.2775, abs=1e-4)
    assert hi[2] == 1.0
    lo, hi = wilson_interval(np.array([0.0]), np.array([0.0]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def test_series_match_hand_counts(looks: pd.DataFrame) -> None:
    obs = long_observations(looks, "created", ["fabric", "knit"], ["city"], "look")
    s = compute_series(obs, by="month", segments=["city"], min_support=10)
    # hand computation for one cell
    sub = looks[(looks["city"] == "Paris") & (looks["created"].str.startswith("2021-03"))]
    row = s[(s["unique_id"] == "city=Paris|fabric=satin") & (s["ds"] == "2021-03-01")].iloc[0]
    assert row["n"] == len(sub)
    assert row["count"] == (sub["fabric"] == "satin").sum()
    assert row["y"] == pytest.approx((sub["fabric"] == "satin").mean())
    ok = s["n"] > 0
    assert (s.loc[ok, "lo"] <= s.loc[ok, "y"] + 1e-12).all() and (s.loc[ok, "y"] <= s.loc[ok, "hi"] + 1e-12).all()
    # shares of one attribute add to 1 in every period and segment
    tot = s[s["attribute"] == "fabric"].groupby(["ds", "city"])["y"].sum()
    assert np.allclose(tot, 1.0)
    assert list(s.columns[:3]) == ["unique_id", "ds", "y"]


def test_low_support_is_marked_not_hidden(looks: pd.DataFrame) -> None:
    small = looks.copy()
    small.loc[small.index[:5], "city"] = "Oslo"  # five looks in one month only
    obs = long_observations(small, "created", ["fabric"], ["city"], "look")
    s = compute_series(obs, by="month", segments=["city"], min_support=10)
    oslo = s[s["city"] == "Oslo"]
    assert not oslo.empty
    assert oslo["low_support"].all()
    empty = oslo[oslo["n"] == 0]
    assert len(empty) > 0 and empty["y"].isna().all()  # months without looks stay, marked


def test_weighted_counts_use_confidence() -> None:
    obs = pd.DataFrame({"look_id": [1, 2, 3, 4], "time": ["2024-01-05"] * 4, "attribute": "colour",
                        "value": ["black", "black", "white", "white"], "confidence": [1.0, 0.5, 1.0, 1.0]})
    s = compute_series(obs, by="month", weighted=True, min_support=1)
    black = s[s["value"] == "black"].iloc[0]
    assert black["n"] == 4 and black["y"] == pytest.approx(1.5 / 4)


def test_periods() -> None:
    ts = pd.Series(pd.to_datetime(["2024-01-10", "2024-02-29", "2024-03-01", "2023-12-05", "2024-07-04"]))
    season = period_start(ts, "season")
    assert list(season.dt.strftime("%Y-%m")) == ["2023-12", "2023-12", "2024-03", "2023-12", "2024-06"]
    week = period_start(ts, "week")
    assert (week.dt.weekday == 0).all()
    assert str(parse_time(pd.Series([2012, 2013])).iloc[0].date()) == "2012-01-01"


@pytest.mark.parametrize(
    "frame, kwargs, message",
    [
        (pd.DataFrame(columns=["time", "attribute", "value"]), {}, "empty"),
        (pd.DataFrame({"time": ["soon", "later", "never"], "attribute": "a", "value": "x"}), {}, "does not parse"),
        (pd.DataFrame({"time": ["2024-01-01"], "attribute": "a", "value": "x"}), {"attributes": ["colour"]},
         "unknown attribute"),
    ],
)
def test_bad_input_messages(frame: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        compute_series(frame, **kwargs)


def test_bad_tables(tmp_path) -> None:
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(BadInput):
        read_table(p)
    p.write_text("created,colour\n")
    with pytest.raises(BadInput, match="no rows"):
        read_table(p)
    df = pd.DataFrame({"created": ["2024-01-01"], "colour": ["red"]})
    with pytest.raises(BadInput, match="unknown column"):
        long_observations(df, "created", ["fabric"])


@pytest.mark.shared_data
def test_streetstyle_subset_matches_hand_computation(data_dir) -> None:
    path = data_dir / "streetstyle27k" / "streetstyle27ktest.csv"
    if not path.exists():
        pytest.skip(f"{path} not found: set VISIONLAKE_DATA")
    df = read_table(path)
    obs = long_observations(df, "created_time", ["major_color", "wearing_hat"], ["city_id"], "id")
    s = compute_series(obs, by="month", segments=["city_id"], min_support=5)
    # hand computation: city 15 (Los Angeles), every month, share of black among labelled colours
    raw = df[df["city_id"] == 15].copy()
    raw["month"] = pd.to_datetime(raw["created_time"], utc=True, format="mixed").dt.strftime("%Y-%m-01")
    lab = raw[raw["major_color"].notna()]
    hand = lab.groupby("month")["major_color"].agg(n="size", count=lambda v: int((v == "Black").sum()))
    got = s[s["unique_id"] == "city_id=15|major_color=Black"]
    got = got.set_index(got["ds"].dt.strftime("%Y-%m-01"))
    for month, r in hand.iterrows():
        assert got.loc[month, "n"] == r["n"]
        assert got.loc[month, "count"] == r["count"]
        assert got.loc[month, "lo"] <= got.loc[month, "y"] <= got.loc[month, "hi"]
    # months where LA had no labelled colour are present and marked
    missing = got[~got.index.isin(hand.index)]
    assert (missing["n"] == 0).all() and missing["low_support"].all()
