"""Retention: stored probe photos, crops of unmatched faces and uploaded trend tables are deleted
after N days.

A face service keeps what it needs to answer and no more (GDPR art. 5(1)(e) storage limitation).
Probe photos are only stored when a caller asked for it (``keep_probe``); crops of faces that
belong to no enrolled person are review material for clustering. Both go after ``retention_days``,
and so do trend tables uploaded through the API (they can hold labels made about people).
Enrolled people's crops stay until the person is forgotten. The face rows and their encrypted
templates stay (they are the collection's index); only the pixels go.

The setting lives in the catalog (``service_settings.retention_days``); ``None`` means keep forever.
The server purges once an hour when it is set, and ``POST /admin/retention/purge`` purges now.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from visionlake.errors import BadInput
from visionlake.service.models import ServiceSetting

if TYPE_CHECKING:
    from visionlake.lake import Lake

KEY = "retention_days"


def trend_tables_dir(lake: Lake) -> Path:
    """Where ``POST /trends/tables`` keeps uploaded tables: ``<id>.csv|.parquet`` + ``<id>.json``."""
    return Path(lake.root) / "service" / "trend_tables"


def delete_trend_table(lake: Lake, meta: dict[str, Any]) -> int:
    """Remove an uploaded table's data file and then its facts file; returns the bytes freed."""
    folder = trend_tables_dir(lake)
    freed = 0
    for name in (str(meta.get("file") or ""), f"{meta['table_id']}.json"):
        p = folder / name
        if name and p.is_file():
            freed += p.stat().st_size
            p.unlink()
    return freed


def _purge_trend_tables(lake: Lake, cutoff: datetime, report: dict[str, Any]) -> None:
    import json

    folder = trend_tables_dir(lake)
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            meta = json.loads(p.read_text())
            at = _aware(datetime.fromisoformat(meta["uploaded_at"]))
        except (OSError, ValueError, KeyError, TypeError):  # unreadable facts: age by the file itself
            meta = {"table_id": p.stem, "file": None}
            at = datetime.fromtimestamp(p.stat().st_mtime, UTC)
        if at <= cutoff:
            report["bytes_freed"] += delete_trend_table(lake, meta)
            report["trend_tables_deleted"] += 1


def get_retention_days(lake: Lake) -> int | None:
    with lake.session() as s:
        row = s.get(ServiceSetting, KEY)
        return None if row is None or row.value is None else int(row.value)


def set_retention_days(lake: Lake, days: int | None) -> int | None:
    if days is not None and (days < 0 or days > 36_500):
        raise BadInput("retention must be between 0 and 36500 days (or null to keep forever)")
    with lake.session() as s:
        row = s.get(ServiceSetting, KEY)
        if row is None:
            s.add(ServiceSetting(key=KEY, value=days))
        else:
            row.value = days
    return days


def purge(lake: Lake, days: int, collections: list[str] | None = None) -> dict[str, Any]:
    """Delete probe photos, unmatched face crops and uploaded trend tables older than ``days`` days.

    ``collections`` limits the purge to those collections' files; uploaded tables belong to no
    collection and are purged only by a lake-wide purge. Returns counts.
    """
    from visionlake.catalog.models import Collection
    from visionlake.faces.models import Face
    cutoff = datetime.now(UTC) - timedelta(days=days)
    cutoff_ts = time.time() - days * 86400
    report: dict[str, Any] = {"days": days, "cutoff": cutoff.isoformat(), "probe_photos_deleted": 0,
                              "face_crops_deleted": 0, "trend_tables_deleted": 0, "bytes_freed": 0}
    if collections is None:
        _purge_trend_tables(lake, cutoff, report)
    with lake.session() as s:
        cols = list(s.scalars(select(Collection).order_by(Collection.name)))
    for col in cols:
        if collections is not None and col.name not in collections:
            continue
        probes = lake.collection_dir(col.name) / "probes"
        if probes.is_dir():
            for dirpath, _dirs, files in os.walk(probes):
                for f in files:
                    p = os.path.join(dirpath, f)
                    st = os.stat(p)
                    if st.st_mtime <= cutoff_ts:
                        os.unlink(p)
                        report["probe_photos_deleted"] += 1
                        report["bytes_freed"] += st.st_size
        with lake.session() as s:
            rows = s.execute(select(Face.id, Face.crop, Face.created_at).where(
                Face.collection_id == col.id, Face.person_id.is_(None), Face.crop.is_not(None))).all()
            old = [(fid, crop) for fid, crop, at in rows if at is None or _aware(at) <= cutoff]
            for _fid, crop in old:
                path = lake.root / crop
                if path.exists():
                    report["bytes_freed"] += path.stat().st_size
                    path.unlink()
                report["face_crops_deleted"] += 1
            if old:
                s.query(Face).filter(Face.id.in_([f for f, _c in old])).update({"crop": None},
                                                                             synchronize_session=False)
    return report


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)
