"""Thin adapter: a lake collection's fashion tags -> the long observation table of the trend engine.

Kept separate (and lazy) so that the trend engine works on any table without a lake, and so that the
fashion area can change how tags are stored without touching the statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from visionlake.errors import BadInput

if TYPE_CHECKING:
    from visionlake.lake import Lake


def _parse_meta_time(meta: dict[str, Any]) -> Any:
    """Best time of an image from its metadata: a date field, else year (+ season), else None."""
    for key in ("created_time", "date", "time", "timestamp", "taken", "datetime"):
        if meta.get(key):
            return meta[key]
    year = meta.get("year")
    if year:
        season = str(meta.get("season", "")).lower()
        month = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}.get(season, 1)
        return f"{year}-{month:02d}-01"
    return None


def observations_from_lake(lake: Lake, collection: str) -> pd.DataFrame:
    """Long observations (look_id, image_id, time, attribute, value, confidence, region, meta...).

    ``lake`` is a :class:`visionlake.lake.Lake` (anything with ``engine`` and ``collection(name)``).
    Image metadata fields (city, brand, season, ...) become columns so they can be used as segments.
    Raises :class:`BadInput` when the collection has no fashion tags yet.
    """
    from sqlalchemy import inspect, text

    col = lake.collection(collection)
    engine = lake.engine
    if "fashion_tags" not in inspect(engine).get_table_names():
        raise BadInput("collection has no fashion tags yet")
    q = text(
        "SELECT t.image_id, t.attribute, t.value, t.confidence, t.region, i.meta, i.thumbnail, i.created_at "
        "FROM fashion_tags t JOIN images i ON i.id = t.image_id WHERE i.collection_id = :cid"
    )
    with engine.connect() as conn:
        rows = conn.execute(q, {"cid": col.id}).mappings().all()
    if not rows:
        raise BadInput("collection has no fashion tags yet")
    import json

    recs = []
    for r in rows:
        meta = r["meta"]
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                meta = {}
        meta = meta or {}
        rec = {k: v for k, v in meta.items() if isinstance(v, str | int | float)}
        rec.update(
            look_id=r["image_id"], image_id=r["image_id"], attribute=r["attribute"], value=r["value"],
            confidence=r["confidence"], region=r["region"], thumbnail=r["thumbnail"],
            time=_parse_meta_time(meta) or r["created_at"],
        )
        recs.append(rec)
    df = pd.DataFrame(recs)
    df.attrs["lake_root"] = str(getattr(lake, "root", ""))
    return df
