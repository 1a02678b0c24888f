"""The audit log of biometric operations: who identified, verified, enrolled or forgot, and when.

Regulators (GDPR art. 30, BIPA, the EU AI Act for remote biometric identification) expect a record
of each use of a face template. The log holds no pixels and no templates, only typed ids
(``"person:3"``, ``"face:17"``, ``"probe:<path>"`` for a probe photo kept with ``keep_probe``) so that
:func:`scrub` can erase a forgotten person, and the probe photos that matched them, from it too.

**Tamper evidence.** Every row carries ``mac = HMAC-SHA256(K, mac_of_previous_row || canonical(row))``
where ``canonical`` covers the id, time, actor, action, collection, detail and ``ids_digest``, and
``K`` is a random key stored sealed with the lake key (:func:`visionlake.keyring.audit_mac_key`):
whoever can write the catalog but lacks the lake key cannot rewrite, insert or delete a row without
breaking the chain. Ids are handed out by the chain head (:class:`~visionlake.faces.models.AuditHead`),
never by ``max(id) + 1``, so a deleted row's id is never reused, and the head's ``seq`` and ``mac``
show a log whose last rows were cut off. :func:`verify_chain` (``visionlake audit verify``) names the
first row that does not check out.

**Erasure without breaking the chain.** The chain covers ``ids_digest = SHA-256(salt || result ids)``
rather than the ids themselves, with a random per-row ``ids_salt``. While the salt is there, verify
checks the ids against the digest. Erasure (:func:`scrub`) rewrites a row's ids and *deletes its
salt*: the chain still verifies (the digest did not change), and without the salt the digest can no
longer be tested against a guessed ``person:N`` -- so nothing of the erased person stays linkable.
A redaction is accountable: scrub appends a ``redact`` entry (itself chained) listing the audit row
ids it redacted, and verify reports any salt-less row that no later ``redact`` entry lists.

What this does not stop: someone holding the lake key, or restoring an entire older copy of the
catalog together with the head. Exporting the head's ``mac`` elsewhere now and then pins that too.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from visionlake.faces.models import AuditEntry, AuditHead

ACTIONS = ("identify", "verify", "enroll", "forget", "redact")
#: Typed id of a probe photo kept with ``keep_probe``: ``probe:<lake-relative path>`` in ``result_ids``.
#: An id, not free text in ``detail``: the chain covers ``detail`` itself, so a path written there
#: could never be redacted, while result ids are redacted by :func:`scrub` with the chain intact.
PROBE_PREFIX = "probe:"
#: How identify entries written before the typed id named a kept probe (read only, to delete the file).
LEGACY_PROBE_NOTE = re.compile(r"probe kept at (\S+)")


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
) -> int:
    """Append one entry inside the caller's transaction (so the log and the change commit together);
    returns its id."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return append(session, [{"at": datetime.now(UTC), "actor": current_actor(actor), "action": action,
                             "collection": collection, "result_ids": list(result_ids), "detail": detail}])[0]


def _mac_key(session: Session) -> bytes:
    from visionlake.keyring import audit_mac_key, lake_of

    return audit_mac_key(lake_of(session.get_bind()), session)


def _at(value: datetime) -> str:
    """The stored time as the chain sees it: UTC, no zone, microseconds (what SQLite gives back)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def _ids_digest(salt: str, ids: list[Any]) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + json.dumps(ids, separators=(",", ":")).encode()).hexdigest()


def _canonical(id_: int, at: datetime, actor: str, action: str, collection: str | None, detail: str | None,
               ids_digest: str | None) -> bytes:
    return json.dumps([id_, _at(at), actor, action, collection, detail, ids_digest], separators=(",", ":"),
                      ensure_ascii=False).encode()


def _mac(key: bytes, prev: str | None, canonical: bytes) -> str:
    return hmac.new(key, (prev or "").encode() + b"\n" + canonical, hashlib.sha256).hexdigest()


def append(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Append entries (dicts of ``at, actor, action, collection, result_ids, detail``) to the chain.

    Three statements: the head's ``seq`` moves first (which also takes the write lock, so two
    writers never chain from the same row), then the rows go in with their MACs, then the head
    records the last MAC.
    """
    if not rows:
        return []
    key = _mac_key(session)
    n = len(rows)
    head = session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + n)
                           .returning(AuditHead.seq, AuditHead.mac, AuditHead.chain_start)).first()
    if head is None:  # a catalog whose head row was removed: start again after the highest id
        top = session.scalar(select(func.max(AuditEntry.id))) or 0
        session.add(AuditHead(id=1, seq=top + n, mac=None, chain_start=None))
        session.flush()
        head = (top + n, None, None)
    seq, prev, start = head
    first = seq - n + 1
    values = []
    for i, r in enumerate(rows):
        id_ = first + i
        salt = os.urandom(16).hex()
        ids = list(r.get("result_ids") or [])
        digest = _ids_digest(salt, ids)
        at = r["at"] if r.get("at") is not None else datetime.now(UTC)
        at = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
        prev = _mac(key, prev, _canonical(id_, at, r["actor"], r["action"], r.get("collection"), r.get("detail"),
                                          digest))
        values.append({"id": id_, "at": at, "actor": r["actor"], "action": r["action"],
                       "collection": r.get("collection"), "result_ids": ids, "detail": r.get("detail"),
                       "ids_salt": salt, "ids_digest": digest, "mac": prev})
    session.execute(insert(AuditEntry), values)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(
        mac=prev, chain_start=start if start is not None else first))
    return [v["id"] for v in values]


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


def probe_ref(rel: str) -> str:
    """The typed result id of a kept probe photo (``rel``: its path relative to the lake root)."""
    return PROBE_PREFIX + rel


def kept_probes(entry: AuditEntry) -> list[str]:
    """Lake-relative paths of the probe photos an identify entry kept (erasure deletes them).

    Reads the typed ``probe:`` ids; entries written before those existed named the probe in their
    note, which is still read so that erasing from an older lake deletes the file too.
    """
    if entry.action != "identify":
        return []
    out = [str(r)[len(PROBE_PREFIX):] for r in (entry.result_ids or []) if str(r).startswith(PROBE_PREFIX)]
    m = LEGACY_PROBE_NOTE.search(entry.detail or "")
    if m:
        out.append(m.group(1).rstrip(","))
    return out


def scrub(session: Session, refs: set[str]) -> int:
    """Remove the given typed ids from every entry; returns how many entries changed.

    The fact that an identification happened stays (it is the controller's record); which erased
    person it returned does not. Each changed row loses its ``ids_salt`` (see the module docstring:
    the chain stays verifiable, the old ids become untestable) and one ``redact`` entry lists the
    rows changed, so every redaction is on the record.
    """
    if not refs:
        return 0
    changed = []
    for entry in session.scalars(select(AuditEntry)):
        ids = list(entry.result_ids or [])
        kept = [r for r in ids if str(r) not in refs]
        if len(kept) != len(ids):
            entry.result_ids = kept + [f"erased:{len(ids) - len(kept)}"]
            entry.ids_salt = None
            changed.append(int(entry.id))
    if changed:
        session.flush()
        record(session, "redact", None, [f"audit:{i}" for i in changed],
               detail=f"erasure redacted the result ids of {len(changed)} entr{'y' if len(changed) == 1 else 'ies'}",
               actor=None)
    return len(changed)


def verify_chain(session: Session, key: bytes | None = None) -> dict[str, Any]:
    """Check the whole log: MAC chain, ids without gaps or reuse, ids against their digests, the head,
    and that every redacted row is listed by a ``redact`` entry. ``first_broken_id`` is the first row
    that does not check out (``problem`` says why); ``ok`` is true when none."""
    key = key if key is not None else _mac_key(session)
    head = session.get(AuditHead, 1)
    start = head.chain_start if head is not None else None
    out: dict[str, Any] = {"ok": True, "rows": 0, "chained_rows": 0, "legacy_rows": 0, "redacted_rows": 0,
                           "first_broken_id": None, "problem": None}

    def broken(id_: int | None, problem: str) -> dict[str, Any]:
        out.update(ok=False, first_broken_id=id_, problem=problem)
        return out

    prev: str | None = None
    expect = start
    redacted: list[int] = []
    listed: set[int] = set()
    q = select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=2000)
    for e in session.scalars(q):
        out["rows"] += 1
        if start is None or e.id < start:
            if e.mac is not None:
                return broken(e.id, f"row {e.id} carries a MAC but lies before the chain start")
            out["legacy_rows"] += 1
            continue
        if e.id != expect:
            what = "missing (deleted)" if e.id > expect else "out of order (an id was reused)"
            return broken(expect if e.id > expect else e.id, f"row {expect} is {what}")
        if e.ids_salt is not None:
            if e.ids_digest != _ids_digest(e.ids_salt, list(e.result_ids or [])):
                return broken(e.id, f"row {e.id}: its result ids were changed")
        else:
            redacted.append(e.id)
        want = _mac(key, prev, _canonical(e.id, e.at, e.actor, e.action, e.collection, e.detail, e.ids_digest))
        if e.mac is None or not hmac.compare_digest(want, e.mac):
            return broken(e.id, f"row {e.id} was altered, or inserted without the lake key")
        if e.action == "redact":
            listed.update(int(r.split(":", 1)[1]) for r in (e.result_ids or []) if str(r).startswith("audit:"))
        prev = e.mac
        expect += 1
        out["chained_rows"] += 1
    if start is not None and head is not None:
        if head.seq != expect - 1 or (head.mac or None) != prev:
            return broken(expect, f"the log ends at row {expect - 1} but its head says {head.seq}: "
                                  "the last rows were deleted")
    unlisted = [i for i in redacted if i not in listed]
    if unlisted:
        return broken(unlisted[0], f"row {unlisted[0]}: result ids removed without a redact entry")
    out["redacted_rows"] = len(redacted)
    return out
