"""What the app holds while it runs: the lake, limits, key checks, locks, caches, jobs and metrics.

Caches here are per process (``visionlake serve --workers N`` runs N of them). Each is either short
lived (collections: :data:`COLLECTION_TTL_S`) or tied to the index file's modification time, which
every writer changes when it saves (see :meth:`ServiceState.refresh_index`), so a change made by
another worker, an ingestion job or the CLI is seen on the next request.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionlake.service.audit_buffer import AuditBuffer
from visionlake.service.auth import KeyVerifier
from visionlake.service.limits import QueryRunner, RateLimiter, ServiceLimits

if TYPE_CHECKING:
    from visionlake.lake import Lake

#: Seconds a looked-up collection row is reused (create/delete through this process invalidate at once).
COLLECTION_TTL_S = 2.0
_MISSING = object()


class RWLock:
    """Many readers or one writer: searches share an index, enrollment and erasure change it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class ServiceState:
    """Shared by every request of one app (one per process)."""

    lake: Lake
    limits: ServiceLimits
    ingest_roots: list[Path] = field(default_factory=list)
    job_workers: int = 1
    limiter: RateLimiter = field(default_factory=RateLimiter)
    verifier: KeyVerifier | None = None
    #: key checks in flight on the event loop, by SHA-256 of the presented key (see deps._check_key)
    key_checks: dict[bytes, Any] = field(default_factory=dict)
    #: one model lock per process: dlib's detector objects are not documented as thread-safe
    model_lock: threading.Lock = field(default_factory=threading.Lock)
    _locks: dict[str, RWLock] = field(default_factory=lambda: defaultdict(RWLock))
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    jobs: Any = None
    metrics: Any = None
    fashion_models: dict[str, Any] = field(default_factory=dict)
    audit: AuditBuffer | None = None
    queries: QueryRunner = field(default_factory=QueryRunner)
    _collections: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _index_gen: dict[tuple[str, str], int | None] = field(default_factory=dict)
    _gen_guard: threading.Lock = field(default_factory=threading.Lock)
    #: callbacks(collection) run when a collection's indexes changed under us (caches derived from them)
    on_index_change: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.verifier is None:
            self.verifier = KeyVerifier(self.lake)
        if self.audit is None:
            self.audit = AuditBuffer(self.lake)

    # ------------------------------------------------------------------ collections
    def cached_collection(self, name: str) -> Any:
        """The collection row (detached), from a short-lived cache; None when there is none."""
        now = time.monotonic()
        hit = self._collections.get(name)
        if hit is not None and now - hit[0] < COLLECTION_TTL_S:
            return hit[1]
        from sqlalchemy import select

        from visionlake.catalog.models import Collection

        with self.lake.session() as s:
            col = s.scalar(select(Collection).where(Collection.name == name))
        if col is not None:
            if len(self._collections) > 10_000:
                self._collections.clear()
            self._collections[name] = (now, col)
        else:
            self._collections.pop(name, None)
        return col

    def forget_collection(self, name: str | None = None) -> None:
        """Drop cached rows (one collection, or all) after a create, delete or settings change."""
        if name is None:
            self._collections.clear()
        else:
            self._collections.pop(name, None)

    def lock(self, collection: str) -> RWLock:
        """The reader/writer lock of one collection's indexes."""
        with self._locks_guard:
            return self._locks[collection]

    def drop_cached_indexes(self, collection: str) -> None:
        """Forget the lake's open indexes of a collection so the next use reloads them from disk
        (after a job in another process has written them)."""
        cache = getattr(self.lake, "_indexes", None)
        with self.lock(collection).write():
            if isinstance(cache, dict):
                for key in [k for k in cache if k[0] == collection]:
                    cache.pop(key).close()
            self._note_indexes(collection)
        for fn in self.on_index_change:
            fn(collection)

    # ------------------------------------------------------------------ index freshness
    def _index_mtime(self, collection: str, space: str) -> int | None:
        try:
            return os.stat(self.lake.index_header_path(collection, space)).st_mtime_ns
        except OSError:
            return None

    def _note_indexes(self, collection: str) -> None:
        with self._gen_guard:
            for key in [k for k in self._index_gen if k[0] == collection]:
                self._index_gen[key] = self._index_mtime(*key)

    def index_loaded(self, collection: str, space: str) -> bool:
        """Whether the lake holds this index in memory and its file has not changed since (no I/O
        but one ``stat``): the condition for running a query on it inline."""
        cache = getattr(self.lake, "_indexes", None)
        if not isinstance(cache, dict) or (collection, space) not in cache:
            return False
        with self._gen_guard:
            seen = self._index_gen.get((collection, space), _MISSING)
        return seen is not _MISSING and seen == self._index_mtime(collection, space)

    def refresh_index(self, collection: str, space: str) -> bool:
        """Reload a collection's indexes if their file changed since this process last saw it.

        One ``stat`` per call. Must be called *without* holding the collection's lock. Writes made
        through this process call :meth:`note_written` afterwards, so they cost no reload.
        Returns True when the cached indexes were dropped.
        """
        key = (collection, space)
        now = self._index_mtime(collection, space)
        with self._gen_guard:
            seen = self._index_gen.get(key, _MISSING)
            if seen is _MISSING or seen == now:
                self._index_gen[key] = now
                return False
            self._index_gen[key] = now
        self.drop_cached_indexes(collection)
        return True

    def note_written(self, collection: str) -> None:
        """After this process wrote a collection's indexes (under its write lock): the files on disk
        are what this process holds, no reload needed; derived caches are dropped."""
        self._note_indexes(collection)
        for fn in self.on_index_change:
            fn(collection)
