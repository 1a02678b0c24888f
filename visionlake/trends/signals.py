"""Signals: is a curve rising, falling, seasonal or new, and which values go together.

Per series (one ``unique_id`` of :func:`visionlake.trends.observations.compute_series`):

* last period vs the one before, with a two-proportion z-test on the underlying counts, so that a jump
  from 2/5 to 4/6 looks is not reported as a +27-point trend;
* Mann-Kendall test and Theil-Sen slope over all supported periods: both are rank-based, so one viral
  month does not make a trend;
* seasonal strength (share of detrended variance explained by the period-of-year profile);
* a label: ``emerging`` (small base, significant rise, accelerating), ``rising``, ``stable``,
  ``seasonal``, ``declining``, ``fading`` (declining to a fraction of its peak), or
  ``insufficient`` (too few supported periods to say anything).

Co-occurrence :func:`lift` answers "do satin, midi and dress go together more than chance?".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from visionlake.errors import BadInput

SEASON_OF = {"week": 52, "month": 12, "season": 4, "year": 1}
LABELS = ("emerging", "rising", "stable", "seasonal", "declining", "fading", "insufficient")


def mann_kendall(y: np.ndarray) -> tuple[float, float]:
    """Kendall's tau of ``y`` against time and its two-sided p-value (normal approx., tie-corrected)."""
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    n = len(y)
    if n < 3 or np.all(y == y[0]):
        return 0.0, 1.0
    tau, p = stats.kendalltau(np.arange(n), y)
    return float(np.nan_to_num(tau)), float(1.0 if np.isnan(p) else p)


def theil_sen(y: np.ndarray) -> float:
    """Median of pairwise slopes (share points per period); robust to single outlying periods."""
    y = np.asarray(y, dtype=float)
    t = np.arange(len(y))
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return 0.0
    return float(stats.theilslopes(y[ok], t[ok])[0])


def two_proportion_p(c1: float, n1: float, c2: float, n2: float) -> float:
    """Two-sided p-value of a change between two shares (pooled z-test); 1.0 without support."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    p = (c1 + c2) / (n1 + n2)
    se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (c2 / n2 - c1 / n1) / se
    return float(2 * stats.norm.sf(abs(z)))


def seasonal_strength(y: np.ndarray, season: int) -> float:
    """1 - Var(remainder) / Var(detrended): 0 = no seasonal profile, 1 = pure seasonal (Hyndman)."""
    y = np.asarray(y, dtype=float)
    if season < 2 or len(y) < 2 * season or not np.all(np.isfinite(y)):
        return 0.0
    trend = pd.Series(y).rolling(season, center=True, min_periods=max(2, season // 2)).mean().to_numpy()
    det = y - trend
    pos = np.arange(len(y)) % season
    prof = np.array([np.nanmean(det[pos == p]) for p in range(season)])
    rem = det - prof[pos]
    vd = np.nanvar(det)
    if not np.isfinite(vd) or vd <= 0:
        return 0.0
    return float(max(0.0, 1 - np.nanvar(rem) / vd))


def _label(y: np.ndarray, slope: float, p_trend: float, strength: float, alpha: float) -> str:
    m = len(y)
    mean = float(np.mean(y))
    peak = float(np.max(y))
    third = max(1, m // 3)
    early, late = float(np.mean(y[:third])), float(np.mean(y[-third:]))
    if p_trend < alpha and slope > 0:
        half = m // 2
        accel = half >= 3 and theil_sen(y[half:]) > theil_sen(y[:half])
        if early < 0.05 and late >= 2 * max(early, 1e-3) and accel:
            return "emerging"
        return "rising"
    if p_trend < alpha and slope < 0:
        if peak > 0 and late <= 0.5 * peak and late < mean:
            return "fading"
        return "declining"
    if strength >= 0.5:
        return "seasonal"
    return "stable"


def compute_signals(series: pd.DataFrame, by: str | None = None, alpha: float = 0.05,
                    min_periods: int = 4) -> pd.DataFrame:
    """One row per series: shares, changes, tests, slope, seasonal strength and a label.

    Periods below the series' minimum support are left out of the trend tests (their share is too
    noisy) but counted in ``periods``; a series with fewer than ``min_periods`` supported periods, or
    with fewer than half of its periods supported, has ``support == "low"`` and is labelled
    ``insufficient`` rather than dropped: no direction is ever called on it. ``confidence`` is the
    level (``1 - alpha``) at which rising/falling labels were tested.
    """
    if series is None or series.empty:
        raise BadInput("no series to analyse")
    by = by or series.attrs.get("by", "month")
    season = SEASON_OF.get(by, 1)
    rows = []
    extra = [c for c in series.columns if c not in
             ("unique_id", "ds", "y", "count", "n", "lo", "hi", "low_support")]
    for uid, g in series.sort_values("ds").groupby("unique_id", sort=False):
        sup = g[~g["low_support"] & (g["n"] > 0)]
        y = sup["y"].to_numpy(dtype=float)
        row: dict[str, object] = {"unique_id": uid}
        for c in extra:
            row[c] = g[c].iloc[0]
        row.update(periods=len(g), supported_periods=len(sup), looks=int(g["n"].sum()),
                   share=float(g["count"].sum() / g["n"].sum()) if g["n"].sum() > 0 else float("nan"))
        if len(sup) >= 2:
            a, b = sup.iloc[-2], sup.iloc[-1]
            row.update(first=sup["ds"].iloc[0], last=b["ds"], last_share=float(b["y"]), prev_share=float(a["y"]),
                       change=float(b["y"] - a["y"]),
                       change_p=two_proportion_p(a["count"], a["n"], b["count"], b["n"]))
        else:
            row.update(first=g["ds"].iloc[0], last=g["ds"].iloc[-1],
                       last_share=float(y[-1]) if len(y) else float("nan"), prev_share=float("nan"),
                       change=float("nan"), change_p=float("nan"))
        # a trend is only called on adequate support: enough supported periods, and most periods supported
        adequate = len(sup) >= min_periods and 2 * len(sup) >= len(g)
        row.update(support="adequate" if adequate else "low", confidence=1.0 - alpha)
        if adequate and np.nanmax(y) > 0:
            tau, p = mann_kendall(y)
            slope = theil_sen(y)
            # seasonal strength needs an evenly spaced curve: use all periods, gaps interpolated
            full = g["y"].interpolate(limit_direction="both").to_numpy(dtype=float)
            strength = seasonal_strength(full, season)
            row.update(tau=tau, trend_p=p, slope=slope, seasonal_strength=strength,
                       label=_label(y, slope, p, strength, alpha))
        else:
            row.update(tau=0.0, trend_p=1.0, slope=0.0, seasonal_strength=0.0, label="insufficient")
        # slope per year in share points, the number a buyer reads
        row["slope_per_year"] = float(row["slope"]) * max(1, season)
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {lb: i for i, lb in enumerate(LABELS)}
    out["_o"] = out["label"].map(order)
    out = out.sort_values(["_o", "slope"], ascending=[True, False]).drop(columns="_o").reset_index(drop=True)
    return out


def top_movers(signals: pd.DataFrame, top: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Most rising and most falling series with a significant trend, strongest slope first."""
    ok = signals[signals["label"] != "insufficient"]
    rising = ok[ok["label"].isin(["emerging", "rising"])].sort_values("slope", ascending=False).head(top)
    falling = ok[ok["label"].isin(["declining", "fading"])].sort_values("slope").head(top)
    return rising, falling


def lift(obs: pd.DataFrame, min_support: int = 10, max_size: int = 3, top: int = 50) -> pd.DataFrame:
    """Co-occurrence lift of attribute values on the same look: P(A and B) / (P(A) P(B)).

    Items are ``attribute=value`` strings; pairs and (with ``max_size=3``) triples seen on at least
    ``min_support`` looks are scored. Lift > 1: the values go together more often than chance.
    """
    if obs is None or obs.empty:
        raise BadInput("no observations for co-occurrence")
    look = obs["look_id"] if "look_id" in obs.columns else obs["image_id"]
    items = obs["attribute"].astype(str) + "=" + obs["value"].astype(str)
    df = pd.DataFrame({"look": look.to_numpy(), "item": items.to_numpy()}).drop_duplicates()
    n_looks = df["look"].nunique()
    counts = df["item"].value_counts()
    frequent = counts[counts >= min_support].index
    df = df[df["item"].isin(frequent)]
    if df.empty:
        return pd.DataFrame(columns=["items", "size", "looks", "support", "lift"])
    looks_idx = {k: i for i, k in enumerate(df["look"].unique())}
    item_idx = {k: i for i, k in enumerate(frequent)}
    M = np.zeros((len(looks_idx), len(item_idx)), dtype=np.float32)
    M[df["look"].map(looks_idx).to_numpy(), df["item"].map(item_idx).to_numpy()] = 1.0
    p = M.sum(0) / n_looks
    names = list(item_idx)
    attr_of = [nm.split("=", 1)[0] for nm in names]
    rows = []
    co = M.T @ M
    pairs = []
    for i, j in zip(*np.triu_indices(len(names), 1), strict=True):
        if attr_of[i] == attr_of[j] or co[i, j] < min_support:
            continue
        pairs.append((i, j))
        rows.append(((names[i], names[j]), int(co[i, j]), co[i, j] / n_looks / (p[i] * p[j])))
    if max_size >= 3 and pairs:
        # extend the strongest pairs only: triples of weak pairs are never frequent anyway
        best = sorted(pairs, key=lambda ij: -co[ij])[:200]
        seen = set()
        for i, j in best:
            both = M[:, i] * M[:, j]
            c3 = both @ M
            for k in np.nonzero(c3 >= min_support)[0]:
                if k in (i, j) or attr_of[k] in (attr_of[i], attr_of[j]):
                    continue
                key = tuple(sorted((i, j, int(k))))
                if key in seen:
                    continue
                seen.add(key)
                rows.append((tuple(names[x] for x in key), int(c3[k]),
                             c3[k] / n_looks / (p[key[0]] * p[key[1]] * p[key[2]])))
    out = pd.DataFrame(rows, columns=["items", "looks", "lift"])
    if out.empty:
        return pd.DataFrame(columns=["items", "size", "looks", "support", "lift"])
    out["size"] = out["items"].map(len)
    out["support"] = out["looks"] / n_looks
    out["items"] = out["items"].map(" x ".join)
    return out.sort_values("lift", ascending=False).head(top)[["items", "size", "looks", "support", "lift"]]
