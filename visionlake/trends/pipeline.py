"""Glue used by the CLI and the report: series -> forecasts as a tidy table.

Kept out of :mod:`forecast` so that the models stay plain numeric objects (panels in, arrays out).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from visionlake.errors import BadInput
from visionlake.trends.forecast import make_model
from visionlake.trends.observations import to_wide
from visionlake.trends.signals import SEASON_OF

FREQ = {"week": "W-MON", "month": "MS", "season": "3MS", "year": "YS"}


def forecast_series(series: pd.DataFrame, horizon: int, model: str = "default", by: str | None = None,
                    ids: list[str] | None = None, levels: tuple[int, ...] = (80, 95)) -> pd.DataFrame:
    """Forecast every (or the listed) series; tidy ``unique_id, ds, mean, lo-80, hi-80, lo-95, hi-95``.

    Shares are clipped to [0, 1] after forecasting: intervals of a proportion never leave that range.
    """
    by = by or series.attrs.get("by", "month")
    if horizon < 1:
        raise BadInput("--horizon must be at least 1")
    data = series if ids is None else series[series["unique_id"].isin(ids)]
    if data.empty:
        raise BadInput("no series to forecast")
    wide = to_wide(data)
    if len(wide) < 2:
        raise BadInput(f"only one {by} of data: a forecast needs at least two periods")
    season = SEASON_OF.get(by, 1)
    # a season that the history cannot show twice is no season at all for the models
    if len(wide) < 2 * season:
        season = 1 if len(wide) < 8 else min(season, max(1, len(wide) // 3))
    m = make_model(model, max(1, season), bounds=(0.0, 1.0))
    m.fit(wide.to_numpy().T)
    pred = m.predict(horizon, level=levels)
    future = pd.date_range(wide.index[-1], periods=horizon + 1, freq=FREQ.get(by, "MS"))[1:]
    frames = []
    for i, uid in enumerate(wide.columns):
        rec = {"unique_id": uid, "ds": future}
        for k, v in pred.items():
            rec[k] = np.clip(v[i], 0.0, 1.0)
        frames.append(pd.DataFrame(rec))
    out = pd.concat(frames, ignore_index=True)
    table = getattr(m, "cv_table", {}) or {}
    choice = getattr(m, "choice", "") or model
    out.attrs.update(model=model, season=season, weights=getattr(m, "weights", {}), choice=choice,
                     cv_mase=table.get(choice))
    return out
