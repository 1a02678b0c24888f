"""Forecasting attribute curves: reference models, a global model and a validated ensemble.

Every model is a plain object with ``fit(Y, X=None)`` on a panel ``Y`` of shape ``(n_series, T)`` and
``predict(h, level=(80, 95))`` returning ``{"mean": (n, h), "lo-80": ..., "hi-80": ...}`` -- the same
keys statsforecast uses, so a table of forecasts looks the same whichever model made it.

Why a panel and not one series at a time: trend curves of one collection share their seasonal shape
(summer colours, winter outerwear). A single model trained across all series (:class:`GlobalBoosted`)
learns that shape from every series at once, which is what beats per-series models such as TBATS on
short, noisy weekly curves. :class:`ValidatedEnsemble` then blends it with two robust per-series
models, with weights chosen on the last season *of the training part only* -- never on the future.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from threadpoolctl import threadpool_limits

Levels = Sequence[int]


# --------------------------------------------------------------------------------------------- metrics
def seasonal_scale(train: np.ndarray, season: int) -> np.ndarray:
    """MASE denominator per series: mean absolute seasonal difference over the whole training part.

    Falls back to the first difference when a series is shorter than one season + 1, so that the
    metric still exists (flagged by the caller) instead of dividing by nothing.
    """
    train = np.atleast_2d(np.asarray(train, dtype=float))
    lag = season if train.shape[1] > season else 1
    if train.shape[1] <= lag:
        return np.full(train.shape[0], np.nan)
    return np.nanmean(np.abs(train[:, lag:] - train[:, :-lag]), axis=1)


def mase(train: np.ndarray, test: np.ndarray, forecast: np.ndarray, season: int = 52) -> np.ndarray:
    """MASE of each series (HERMES protocol: scale over all training weeks). NaN where scale is 0."""
    scale = seasonal_scale(train, season)
    err = np.nanmean(np.abs(np.atleast_2d(test) - np.atleast_2d(forecast)), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = err / scale
    out[~np.isfinite(out)] = np.nan
    return out


def _safe_scale(train: np.ndarray, season: int) -> np.ndarray:
    """A positive scale for normalising series: MASE scale, else std, else 1 (all-zero series)."""
    s = seasonal_scale(train, season)
    std = np.nanstd(train, axis=1)
    s = np.where(np.isfinite(s) & (s > 1e-12), s, std)
    return np.where(np.isfinite(s) & (s > 1e-12), s, 1.0)


def fill_gaps(Y: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Periods without a value (no looks) filled by linear interpolation, edges by the nearest value.

    Why not zeros: a share is unknown, not zero, in a week nobody was photographed; a zero would be read
    by every model as a collapse. Series with no value at all become ``empty``.
    """
    Y = np.array(Y, dtype=float)
    Y[~np.isfinite(Y)] = np.nan
    t = np.arange(Y.shape[1])
    for row in Y:
        ok = ~np.isnan(row)
        if ok.all():
            continue
        row[:] = np.interp(t, t[ok], row[ok]) if ok.any() else empty
    return Y


def _normal_quantiles(h: int, levels: Levels) -> dict[int, np.ndarray]:
    """Random-walk widths in scale units when no holdout exists: z * sqrt(step)."""
    from scipy.stats import norm

    steps = np.sqrt(np.arange(1, h + 1))
    return {lv: norm.ppf(0.5 + lv / 200.0) * steps for lv in levels}


# --------------------------------------------------------------------------------------- base classes
@dataclass
class PanelModel:
    """Base: stores the training panel and turns point forecasts + residual scale into intervals.

    Intervals are conformal-style: the absolute errors of a holdout forecast, divided by each series'
    scale and pooled over series per horizon step, give quantiles that are multiplied back. That is
    cheap, model-agnostic and honest about how errors grow with the horizon.
    """

    season: int = 52
    name: str = "model"
    _Y: np.ndarray | None = field(default=None, init=False, repr=False)
    _X: np.ndarray | None = field(default=None, init=False, repr=False)
    _q: dict[int, np.ndarray] | None = field(default=None, init=False, repr=False)

    def fit(self, Y: np.ndarray, X: np.ndarray | None = None) -> PanelModel:
        """Remember the panel; subclasses may train here."""
        Y = np.atleast_2d(np.asarray(Y, dtype=float))
        if Y.shape[1] < 2:
            from visionlake.errors import BadInput

            raise BadInput("a forecast needs at least two periods of history")
        self._Y = fill_gaps(Y)
        self._X = None if X is None else fill_gaps(np.atleast_2d(np.asarray(X, dtype=float)), 0.5)
        self._q = None
        return self

    def point(self, h: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def calibrate(self, holdout: int | None = None, levels: Levels = (80, 95)) -> None:
        """Estimate interval widths from a holdout forecast inside the training data."""
        assert self._Y is not None
        T = self._Y.shape[1]
        hv = holdout or min(self.season, max(1, T // 4))
        if T - hv < 3:
            self._q = None
            return
        clone = self.__class__(**self._params())
        clone.fit(self._Y[:, : T - hv], None if self._X is None else self._X[:, : T - hv])
        fc = clone.point(hv)
        self._set_quantiles(self._Y[:, : T - hv], self._Y[:, T - hv :], fc, levels)

    def _set_quantiles(self, train: np.ndarray, test: np.ndarray, fc: np.ndarray, levels: Levels) -> None:
        scale = _safe_scale(train, self.season)
        err = np.abs(test - fc) / scale[:, None]  # (n, hv)
        # smooth over neighbouring horizons so that 100 series give stable quantiles
        self._q = {}
        for lv in levels:
            q = np.nanquantile(err, lv / 100.0, axis=0)
            q = np.maximum.accumulate(q)  # uncertainty never shrinks with the horizon
            self._q[lv] = q

    def _params(self) -> dict:
        return {"season": self.season}

    def predict(self, h: int, level: Levels = (80, 95)) -> dict[str, np.ndarray]:
        """Point forecast and intervals for ``h`` periods after the training data."""
        mean = np.asarray(self.point(h), dtype=float)
        if not np.isfinite(mean).all():  # a member that diverged: its seasonal-naive value instead
            assert self._Y is not None
            sn = np.array([_seasonal_naive(y, h, self.season) for y in self._Y])
            mean = np.where(np.isfinite(mean), mean, sn)
        out = {"mean": mean}
        if level:
            if self._q is None or any(lv not in self._q for lv in level):
                self.calibrate(levels=level)
            assert self._Y is not None
            scale = _safe_scale(self._Y, self.season)
            if self._q is None:  # too short to calibrate: honest random-walk widths, never NaN
                self._q = _normal_quantiles(h, level)
            for lv in level:
                q = self._q[lv]
                qh = np.concatenate([q, np.repeat(q[-1:], max(0, h - len(q)))])[:h]
                # beyond the calibrated horizon widen with sqrt(h) as a random walk would
                grow = np.sqrt(np.maximum(1.0, np.arange(1, h + 1) / max(1, len(q))))
                width = scale[:, None] * (qh * grow)[None, :]
                out[f"lo-{lv}"] = mean - width
                out[f"hi-{lv}"] = mean + width
        return out


# ----------------------------------------------------------------------------------- local baselines
@dataclass
class StatsForecastLocal(PanelModel):
    """Any statsforecast model applied series by series (the published reference models)."""

    factory: Callable[[int], object] | None = None
    name: str = "statsforecast"

    def _params(self) -> dict:
        return {"season": self.season, "factory": self.factory, "name": self.name}

    def point(self, h: int) -> np.ndarray:
        assert self._Y is not None and self.factory is not None
        out = np.empty((self._Y.shape[0], h))
        for i, y in enumerate(self._Y):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = self.factory(self.season)
                    m.fit(y)  # type: ignore[attr-defined]
                    out[i] = m.predict(h)["mean"]  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - a model failing on one series must not sink the panel
                out[i] = _seasonal_naive(y, h, self.season)
        return out


def _centred_mean(y: np.ndarray, w: int) -> np.ndarray:
    """Mean of ``y[a-w : a+w+1]`` for every ``a``, truncated at both ends (never looks past ``y``)."""
    c = np.concatenate([[0.0], np.cumsum(y)])
    a = np.arange(len(y))
    lo, hi = np.maximum(0, a - w), np.minimum(len(y), a + w + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def _seasonal_naive(y: np.ndarray, h: int, season: int) -> np.ndarray:
    if len(y) < season:
        return np.repeat(y[-1], h)
    last = y[-season:]
    return np.resize(last, h)


@dataclass
class SeasonalNaive(PanelModel):
    """Last season repeated: the MASE yardstick and the fallback of every other model."""

    name: str = "seasonal_naive"

    def point(self, h: int) -> np.ndarray:
        assert self._Y is not None
        return np.array([_seasonal_naive(y, h, self.season) for y in self._Y])


@dataclass
class SeasonalDecomp(PanelModel):
    """Recent seasonally adjusted level + an averaged, smoothed seasonal profile.

    Why: the seasonal shape of a fashion attribute is stable across years while single weeks are noisy;
    averaging every past year and smoothing over neighbouring weeks gives a steadier profile than
    repeating last year (seasonal naive), and the level follows the last two months.
    """

    name: str = "seasonal_decomp"
    smooth: int = 5
    recent: int = 8

    def _params(self) -> dict:
        return {"season": self.season, "smooth": self.smooth, "recent": self.recent}

    def point(self, h: int) -> np.ndarray:
        assert self._Y is not None
        return np.array([self._one(y, h) for y in self._Y])

    def _one(self, y: np.ndarray, h: int) -> np.ndarray:
        s, T = self.season, len(y)
        if T < 2 * s + 1:
            return _seasonal_naive(y, h, s) if T >= s else np.repeat(np.mean(y[-self.recent :]), h)
        k = np.ones(s + 1)
        k[0] = k[-1] = 0.5
        k /= s
        trend = np.convolve(y, k, mode="valid")
        off = s // 2
        det = np.full(T, np.nan)
        det[off : off + len(trend)] = y[off : off + len(trend)] - trend
        pos = np.arange(T) % s
        seas = np.array([np.nanmean(det[pos == p]) if np.any(~np.isnan(det[pos == p])) else 0 for p in range(s)])
        half = min(self.smooth, s) // 2
        if half >= 1:  # circular moving average over neighbouring season positions
            offs = np.arange(-half, half + 1)
            seas = seas[(np.arange(s)[:, None] + offs[None, :]) % s].mean(axis=1)
        seas -= seas.mean()
        level = np.mean((y - seas[pos])[-self.recent :])
        return level + seas[np.arange(T, T + h) % s]


@dataclass
class RecentMean(PanelModel):
    """Flat forecast at the mean of the last ``window`` periods (default: one season).

    Why: on short, noisy share curves (a few dozen looks per month) the seasonal profile of one year is
    mostly noise; the recent level is the forecast that noise hurts least, and in a combination it shrinks
    the seasonal members towards it.
    """

    name: str = "level"
    window: int | None = None

    def _params(self) -> dict:
        return {"season": self.season, "window": self.window}

    def point(self, h: int) -> np.ndarray:
        assert self._Y is not None
        w = self.window or max(4, self.season)
        return np.repeat(self._Y[:, -w:].mean(axis=1, keepdims=True), h, axis=1)


# -------------------------------------------------------------------------------------- global model
@dataclass
class GlobalBoosted(PanelModel):
    """One gradient-boosted model across all series, direct multi-horizon, L1 loss on scaled targets.

    Each training row is (series, origin t, step k): features are the series' values one and two seasons
    before the target week, its recent levels and year-on-year changes, all relative to the last season's
    mean and divided by the MASE scale, so that series of any size share one model. The loss is L1 on
    the same scale, i.e. exactly the MASE being scored. An optional external weak signal ``X`` (e.g. the
    share of posts by fashion-forward influencers, HERMES' ``ff / (main + ff)``) adds its recent mean and
    year-on-year change as features; only its training part is ever used.
    """

    name: str = "global_boosted"
    min_history: int | None = None
    stride: int = 2
    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 50
    n_threads: int = 1
    _model: object = field(default=None, init=False, repr=False)
    _trained_h: int = field(default=0, init=False, repr=False)
    _cols: np.ndarray | None = field(default=None, init=False, repr=False)

    def fit(self, Y: np.ndarray, X: np.ndarray | None = None) -> GlobalBoosted:
        """Store the panel and forget any model trained on a previous one."""
        super().fit(Y, X)
        self._model, self._trained_h = None, 0
        return self

    def _params(self) -> dict:
        return {
            "season": self.season,
            "min_history": self.min_history,
            "stride": self.stride,
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "n_threads": self.n_threads,
        }

    # windows scale with the season so that monthly (12) and weekly (52) data both work
    def _windows(self) -> tuple[int, int]:
        s = self.season
        return max(1, round(s / 13)), max(2, round(s / 4))

    def _features(self, y: np.ndarray, r: np.ndarray | None, t: int, hs: np.ndarray) -> tuple:
        """Features of the rows with origin ``t`` (``y[:t]`` known) for steps ``hs``."""
        s = self.season
        short, mid = self._windows()
        last = y[max(0, t - s) : t]
        lvl = float(last.mean())
        scale = float(self._scales_at(y[:t]))
        tgt = t - 1 + hs
        known = y[:t]
        ma2, ma3 = _centred_mean(known, 2), _centred_mean(known, 3)
        cols: list[np.ndarray] = [hs.astype(float)]
        for lag in (s, 2 * s):
            j = tgt - lag
            ok = (j - 2 >= 0) & (j + 2 < t)
            jj = np.clip(j, 0, t - 1)
            cols += [np.where(ok, (known[jj] - lvl) / scale, np.nan), np.where(ok, (ma2[jj] - lvl) / scale, np.nan)]
        # the most recent known value at the same season position (handles h > season)
        j = np.clip(tgt - s * np.ceil(np.maximum(hs, 1) / s).astype(int), 0, t - 1)
        cols += [(known[j] - lvl) / scale, (ma3[j] - lvl) / scale]
        recent = [
            (y[t - short : t].mean() - lvl) / scale,
            (y[t - mid : t].mean() - lvl) / scale,
            (y[t - 1] - lvl) / scale,
            (y[t - mid : t].mean() - y[t - s - mid : t - s].mean()) / scale if t >= s + mid else np.nan,
            (lvl - y[t - 2 * s : t - s].mean()) / scale if t >= 2 * s else np.nan,
            lvl / scale,
        ]
        if r is not None:
            recent += [
                r[t - mid : t].mean(),
                r[max(0, t - s) : t].mean(),
                r[t - mid : t].mean() - r[t - s - mid : t - s].mean() if t >= s + mid else np.nan,
            ]
        n = len(hs)
        cols += [np.full(n, v) for v in recent]
        cols.append((tgt % s).astype(float))
        return np.column_stack(cols), lvl, scale

    def _scales_at(self, y: np.ndarray) -> float:
        s = self.season
        lag = s if len(y) > s else 1
        sc = np.mean(np.abs(y[lag:] - y[:-lag])) if len(y) > lag else 0.0
        if not np.isfinite(sc) or sc < 1e-12:
            sc = float(np.std(y)) or 1.0
        return sc

    def _fit_h(self, h: int) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        assert self._Y is not None
        Y, R = self._Y, self._X
        n, T = Y.shape
        start = self.min_history or (self.season + self._windows()[1] + 4)
        start = min(start, max(self._windows()[1] + 1, T - 1))
        rows, targets = [], []
        for t in range(start, T, self.stride):
            hs = np.arange(1, min(h, T - t) + 1)
            if len(hs) == 0:
                continue
            for i in range(n):
                r = None if R is None else R[i]
                F, lvl, sc = self._features(Y[i], r, t, hs)
                rows.append(F)
                targets.append((Y[i, t - 1 + hs] - lvl) / sc)
        if not rows:
            self._model = None
            return
        X = np.vstack(rows)
        z = np.concatenate(targets)
        # columns without any value (e.g. two-seasons-back on short histories) break the binning
        self._cols = ~np.all(np.isnan(X), axis=0)
        X = X[:, self._cols]
        if len(z) < 20:
            self._model = None
            return
        model = HistGradientBoostingRegressor(
            loss="absolute_error",
            # small panels (a dashboard's five curves) need few trees: fast, and less to overfit
            max_iter=min(self.max_iter, max(50, len(z) // 20)),
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=min(self.min_samples_leaf, max(5, len(z) // 20)),
            random_state=0,
        )
        # one thread: on a shared, busy machine OpenMP spin-waits make HGB 10x slower, not faster
        with threadpool_limits(limits=self.n_threads):
            model.fit(X, z)
        self._model, self._trained_h = model, h

    def point(self, h: int) -> np.ndarray:
        assert self._Y is not None
        Y, R = self._Y, self._X
        n, T = Y.shape
        if T < self._windows()[1] + 3:
            return SeasonalNaive(season=self.season).fit(Y).point(h)
        if self._model is None or self._trained_h < h:
            self._fit_h(h)
        if self._model is None:
            return SeasonalNaive(season=self.season).fit(Y).point(h)
        hs = np.arange(1, h + 1)
        feats, lvls, scs = [], [], []
        for i in range(n):
            F, lvl, sc = self._features(Y[i], None if R is None else R[i], T, hs)
            feats.append(F)
            lvls.append(lvl)
            scs.append(sc)
        with threadpool_limits(limits=self.n_threads):
            z = self._model.predict(np.vstack(feats)[:, self._cols]).reshape(n, h)  # type: ignore[attr-defined]
        return np.asarray(lvls)[:, None] + z * np.asarray(scs)[:, None]


# -------------------------------------------------------------------------------------- ensembles
def greedy_weights(forecasts: dict[str, np.ndarray], train: np.ndarray, actual: np.ndarray, season: int,
                   rounds: int = 10) -> dict[str, float]:
    """Forward selection with replacement (Caruana et al. 2004) minimising mean MASE on a holdout.

    Why not least squares: with a handful of strongly correlated members, free weights overfit one
    holdout year; counts out of ``rounds`` are coarse, non-negative and sum to one by construction.
    """
    names = list(forecasts)
    counts = dict.fromkeys(names, 0)
    for _ in range(rounds):
        best: tuple[float, str] | None = None
        for nm in names:
            c = dict(counts)
            c[nm] += 1
            tot = sum(c.values())
            fc = sum(c[k] * forecasts[k] for k in names) / tot
            score = float(np.nanmean(mase(train, actual, fc, season)))
            if best is None or score < best[0]:
                best = (score, nm)
        assert best is not None
        counts[best[1]] += 1
    tot = sum(counts.values())
    return {k: v / tot for k, v in counts.items() if v}


def default_members(season: int) -> list[PanelModel]:
    """The members of the default ensemble: the global model and two robust per-series models."""
    from statsforecast.models import MSTL

    members: list[PanelModel] = [GlobalBoosted(season=season)]
    if season >= 2:  # MSTL needs a real season
        members.append(StatsForecastLocal(season=season, name="mstl", factory=lambda s: MSTL(season_length=s)))
    members.append(SeasonalDecomp(season=season))
    return members


@dataclass
class ValidatedEnsemble(PanelModel):
    """The default forecaster: members weighted on the last season of the training part, then refit.

    1. Cut the training panel at ``T - holdout``; fit every member on the head, forecast the holdout.
    2. Choose weights by :func:`greedy_weights` on those holdout forecasts (MASE, same protocol).
    3. Refit every member on the full training panel and blend with those weights.
    The holdout errors of the blend also calibrate the prediction intervals, so step 1 is not wasted.
    When the history is too short for a holdout, members are averaged with equal weights.
    """

    name: str = "validated_ensemble"
    members: list[PanelModel] | None = None
    weights: dict[str, float] = field(default_factory=dict, init=False)
    validation: dict[str, float] = field(default_factory=dict, init=False)

    def _params(self) -> dict:
        return {"season": self.season}

    def fit(self, Y: np.ndarray, X: np.ndarray | None = None) -> ValidatedEnsemble:
        super().fit(Y, X)
        if self.members is None:
            self.members = default_members(self.season)
        self._fitted_h = 0
        return self

    def _validate(self, h: int, levels: Levels = (80, 95)) -> None:
        assert self._Y is not None and self.members is not None
        T = self._Y.shape[1]
        hv = min(h, self.season)
        names = [m.name for m in self.members]
        if T - hv < max(self.season + 10, 2 * hv):
            self.weights = {nm: 1.0 / len(names) for nm in names}
            self.validation = {}
            self._q = None
            return
        head, tail = self._Y[:, : T - hv], self._Y[:, T - hv :]
        xhead = None if self._X is None else self._X[:, : T - hv]
        fcs: dict[str, np.ndarray] = {}
        for m in self.members:
            clone = m.__class__(**m._params())
            try:
                fcs[m.name] = clone.fit(head, xhead).point(hv)
            except Exception:  # noqa: BLE001 - a member that cannot fit this data is left out
                continue
        if not fcs:
            self.weights = {"seasonal_naive": 1.0}
            return
        self.validation = {k: float(np.nanmean(mase(head, tail, v, self.season))) for k, v in fcs.items()}
        self.weights = greedy_weights(fcs, head, tail, self.season)
        blend = sum(w * fcs[k] for k, w in self.weights.items())
        self.validation["ensemble"] = float(np.nanmean(mase(head, tail, blend, self.season)))
        self._set_quantiles(head, tail, blend, levels)

    def point(self, h: int) -> np.ndarray:
        assert self._Y is not None and self.members is not None
        if not self.weights or self._fitted_h < h:
            self._validate(h)
            self._fitted_h = h
        out = np.zeros((self._Y.shape[0], h))
        total = 0.0
        for m in self.members:
            w = self.weights.get(m.name, 0.0)
            if w <= 0:
                continue
            try:
                out += w * m.fit(self._Y, self._X).point(h)
                total += w
            except Exception:  # noqa: BLE001 - fall back to the members that work
                continue
        if total == 0:
            return SeasonalNaive(season=self.season).fit(self._Y).point(h)
        return out / total

    def calibrate(self, holdout: int | None = None, levels: Levels = (80, 95)) -> None:
        """Intervals come from the validation step; run it if it has not run yet."""
        if self._q is None:
            self._validate(holdout or self.season, levels)


def reference_models(season: int) -> dict[str, Callable[[], PanelModel]]:
    """Published reference models (statsforecast) by name, for benchmarks and the CLI."""
    from statsforecast.models import MSTL, TBATS, AutoETS, AutoTheta

    return {
        "seasonal_naive": lambda: SeasonalNaive(season=season),
        "mstl": lambda: StatsForecastLocal(
            season=season, name="mstl", factory=lambda s: MSTL(season_length=s)
        ) if season >= 2 else SeasonalDecomp(season=season),
        "ets": lambda: StatsForecastLocal(season=season, name="ets", factory=lambda s: AutoETS(season_length=s)),
        "theta": lambda: StatsForecastLocal(
            season=season, name="theta", factory=lambda s: AutoTheta(season_length=s)
        ),
        "tbats": lambda: StatsForecastLocal(
            season=season, name="tbats", factory=lambda s: TBATS(season_length=s)
        ),
    }


#: Every model name :func:`make_model` accepts (besides aliases), the CV-chosen default first: the one list
#: behind the CLI's ``--model`` help, the service's ``model`` schema and the error message below.
ModelName = Literal["default", "blend", "global", "decomp", "seasonal_naive", "ets", "theta", "mstl", "tbats"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
#: The reference forecasters every benchmark scores the default against (in its CV table too).
REFERENCE_MODELS: tuple[str, ...] = ("seasonal_naive", "theta", "ets", "mstl", "blend")


def make_model(name: str, season: int, bounds: tuple[float, float] | None = None) -> PanelModel:
    """Model by name: ``default`` (CV-chosen combination), ``blend`` (the previous default), a member or a
    reference model. ``bounds`` clips the default's forecasts and intervals (shares: ``(0, 1)``)."""
    from visionlake.errors import BadInput

    if name == "default":
        from visionlake.trends.auto import AutoForecaster

        return AutoForecaster(season=season, bounds=bounds)
    if name in ("blend", "ensemble", "validated_ensemble"):
        return ValidatedEnsemble(season=season)
    if name in ("global", "global_boosted"):
        return GlobalBoosted(season=season)
    if name in ("decomp", "seasonal_decomp"):
        return SeasonalDecomp(season=season)
    refs = reference_models(season)
    if name not in refs:
        raise BadInput(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return refs[name]()
