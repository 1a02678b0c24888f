"""The audit log of biometric operations: who identified, verified, enrolled or forgot, and when.

Regulators (GDPR art. 30, BIPA, the EU AI Act for remote biometric identification) expect a record
of each use of a face template. The log holds no pixels and no templates, only typed ids
(``"person:3"``, ``"face:17"``) so that :func:`scrub` can erase a forgotten person from it too.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from visionlake.faces.models import AuditEntry

ACTIONS = ("identify", "verify", "enroll", "forget")
#: How an identify entry names a probe photo kept with ``keep_probe`` (a lake-relative path).
PROBE_NOTE = re.compile(r"probe kept at (\S+)")
#: What the note becomes once that photo is erased.
ERASED_PROBE = "probe kept (erased)"


def current_actor(actor: str | None = None) -> str:
    """Who is acting: an explicit name (API key, service user), ``VISIONLAKE_ACTOR``, else the OS user."""
    if actor:
        return actor
    env = os.environ.get("VISIONLAKE_ACTOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return f"uid:{os.getuid()}"


def record(
    session: Session,
    action: str,
    collection: str | None,
    result_ids: Iterable[str] = (),
    detail: str | None = None,
    actor: str | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (so the log and the change commit together)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(
        actor=current_actor(actor),
        action=action,
        collection=collection,
        result_ids=list(result_ids),
        detail=detail,
    )
    session.add(entry)
    return entry


def entries(session: Session, action: str | None = None, collection: str | None = None,
            limit: int = 100) -> list[dict[str, Any]]:
    """Most recent entries first, as plain dicts (for the CLI, the service and tests)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        q = q.where(AuditEntry.action == action)
    if collection:
        q = q.where(AuditEntry.collection == collection)
    return [
        {"id": e.id, "at": e.at.isoformat() if e.at else None, "actor": e.actor, "action": e.action,
         "collection": e.collection, "result_ids": e.result_ids, "detail": e.detail}
        for e in session.scalars(q)
    ]


def entries_referring(session: Session, refs: set[str]) -> list[AuditEntry]:
    """Entries whose result ids include any of ``refs`` (what an erasure must scrub)."""
    if not refs:
        return []
    return [e for e in session.scalars(select(AuditEntry)) if refs & {str(r) for r in (e.result_ids or [])}]


def kept_probe(entry: AuditEntry) -> str | None:
    """The lake-relative path of the probe photo an identify entry kept, if any."""
    m = PROBE_NOTE.search(entry.detail or "") if entry.action == "identify" else None
    return m.group(1).rstrip(",") if m else None


def scrub(session: Session, refs: set[str], erased_files: Iterable[str] = ()) -> int:
    """Remove the given typed ids, and notes of erased probe photos, from every entry.

    Returns how many entries changed. The fact that an identification happened stays (it is the
    controller's record); which erased person it returned, and where its photo was, do not.
    """
    gone = set(erased_files)
    if not refs and not gone:
        return 0
    changed = 0
    for entry in session.scalars(select(AuditEntry)):
        ids = list(entry.result_ids or [])
        kept = [r for r in ids if str(r) not in refs]
        touched = False
        if len(kept) != len(ids):
            entry.result_ids = kept + [f"erased:{len(ids) - len(kept)}"]
            touched = True
        probe = kept_probe(entry)
        if probe is not None and probe in gone:
            entry.detail = PROBE_NOTE.sub(ERASED_PROBE, entry.detail or "")
            touched = True
        changed += touched
    return changed
