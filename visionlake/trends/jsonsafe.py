"""JSON that every parser accepts: NaN and infinities become null (Python's json writes bare ``NaN``).

Why a helper: pandas tables carry NaN for "no value" (no looks in a period, no second period to compare);
``json.dumps`` turns it into ``NaN``, which is not JSON. Callers that drop a number also say why in a
``*_reason`` field, so a null is never a silent gap.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd


def clean(obj: Any) -> Any:
    """``obj`` with non-finite floats as None, numpy scalars as Python ones, timestamps as ISO dates."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [clean(v) for v in obj.tolist()]
    if obj is None or obj is pd.NaT:
        return None
    if isinstance(obj, pd.Timestamp | datetime | date):
        return None if pd.isna(obj) else obj.strftime("%Y-%m-%d")
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``df`` as JSON-safe dicts."""
    return [clean(r) for r in df.to_dict("records")]
