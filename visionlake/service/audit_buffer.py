"""Buffered audit writes for the hot identify path: one transaction per batch, not per request.

Writing one audit row per identify call costs a SQLite write transaction (a lock, a WAL append and
an ORM flush: ~3 ms of CPU), which at hundreds of calls per second is most of the request. Here the
request appends the entry to an in-memory queue and a background thread writes everything queued in
one transaction every :data:`FLUSH_EVERY_S` seconds, or sooner when :data:`FLUSH_AT` entries wait.

Guarantees, so that the log stays the controller's record:

* every entry is written: at the next flush, at :meth:`AuditBuffer.flush` (``GET /audit`` and
  ``forget`` call it first, so a reader always sees every earlier call), and at shutdown (the app's
  lifespan and ``atexit``). A crash of the process loses at most the last ~200 ms of entries;
* an entry keeps the time of the call, not of the flush;
* an entry never re-introduces an erased person: at write time, ``person:N`` ids whose person no
  longer exists (forgotten meanwhile, possibly by another process) are replaced by ``erased:N``,
  exactly as :func:`visionlake.faces.audit.scrub` does for rows already written; a probe photo the
  call kept (``probe:`` id) is then deleted and its id redacted too, as erasure does.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from visionlake.lake import Lake

log = logging.getLogger("visionlake.service.audit")

#: Seconds between background flushes.
FLUSH_EVERY_S = 0.2
#: Entries that trigger an early flush.
FLUSH_AT = 256
#: Entries kept in memory at most; past this, the request thread writes synchronously (back-pressure).
MAX_PENDING = 20_000


@dataclass
class PendingEntry:
    """One audit entry waiting to be written."""

    action: str
    collection: str | None
    result_ids: list[str]
    detail: str | None
    actor: str | None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class AuditBuffer:
    """Per-process queue of audit entries with a background writer thread (started on first use)."""

    def __init__(self, lake: Lake, every_s: float = FLUSH_EVERY_S, flush_at: int = FLUSH_AT) -> None:
        self.lake = lake
        self.every_s = every_s
        self.flush_at = flush_at
        self._pending: list[PendingEntry] = []
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one writer at a time keeps entries in call order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        ref = weakref.ref(self)
        atexit.register(lambda: (b := ref()) is not None and b.close())

    # ------------------------------------------------------------------ producers
    def record(self, action: str, collection: str | None, result_ids: list[str], detail: str | None = None,
               actor: str | None = None) -> None:
        """Queue one entry (the same fields as :func:`visionlake.faces.audit.record`)."""
        from visionlake.faces.audit import ACTIONS

        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        entry = PendingEntry(action, collection, list(result_ids), detail, actor)
        with self._lock:
            self._pending.append(entry)
            n = len(self._pending)
        if n >= MAX_PENDING or self._stop.is_set():
            self.flush()  # the writer is behind (or closing): do not grow without bound
            return
        self._ensure_thread()
        if n >= self.flush_at:
            self._wake.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # ------------------------------------------------------------------ writing
    def flush(self) -> int:
        """Write every queued entry now; returns how many were written. Raises if the catalog fails
        (the entries stay queued for the next attempt)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                self._write(batch)
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch  # keep order; retried by the next flush
                raise
            self.written += len(batch)
            return len(batch)

    def _write(self, batch: list[PendingEntry]) -> None:
        """One transaction, one multi-row INSERT into the audit chain (the same rows
        :func:`visionlake.faces.audit.record` makes, without building an ORM object per entry)."""
        from sqlalchemy import select

        from visionlake.faces import audit
        from visionlake.faces.models import Person

        pids = {int(r.split(":", 1)[1]) for e in batch for r in e.result_ids
                if r.startswith("person:") and r.split(":", 1)[1].isdigit()}
        rows = []
        with self.lake.session() as s:
            alive = set(s.scalars(select(Person.id).where(Person.id.in_(pids)))) if pids else set()
            for e in batch:
                kept = [r for r in e.result_ids if not r.startswith("person:")
                        or (r.split(":", 1)[1].isdigit() and int(r.split(":", 1)[1]) in alive)]
                if len(kept) != len(e.result_ids):
                    # a probe photo kept by a call that returned an erased person goes with them
                    probes = [r for r in kept if r.startswith(audit.PROBE_PREFIX)]
                    for ref in probes:
                        self._delete_probe(ref[len(audit.PROBE_PREFIX):])
                    kept = [r for r in kept if r not in probes]
                    kept.append(f"erased:{len(e.result_ids) - len(kept)}")
                rows.append({"at": e.at, "actor": audit.current_actor(e.actor), "action": e.action,
                             "collection": e.collection, "result_ids": kept, "detail": e.detail})
            audit.append(s, rows)  # chained like every other entry (see visionlake.faces.audit)

    def _delete_probe(self, rel: str) -> None:
        from visionlake.lakefiles import lake_file_path

        try:
            lake_file_path(self.lake.root, rel).unlink(missing_ok=True)
        except (OSError, ValueError) as exc:  # the entry is still written without the probe id
            log.warning("could not delete the kept probe of an erased person: %s", exc)

    # ------------------------------------------------------------------ background thread
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="visionlake-audit", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - catalog busy or down: entries stay queued, retried
                log.exception("audit flush failed; %d entries stay queued", self.pending)

    def close(self) -> None:
        """Stop the thread and write what is left (idempotent). A later :meth:`record` starts a new
        thread, so an app that is started again (tests, reloads) keeps working."""
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            t.join(timeout=10)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - at exit there is nobody left to tell but the log
            log.exception("audit flush at shutdown failed; %d entries lost", self.pending)
        finally:
            self._thread = None
            self._stop.clear()


__all__ = ["AuditBuffer", "FLUSH_AT", "FLUSH_EVERY_S"]
