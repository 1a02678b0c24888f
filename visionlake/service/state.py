"""What the app holds while it runs: the lake, limits, key checks, locks, jobs and metrics."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionlake.service.auth import KeyVerifier
from visionlake.service.limits import RateLimiter, ServiceLimits


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

    lake: Any
    limits: ServiceLimits
    ingest_roots: list[Path] = field(default_factory=list)
    job_workers: int = 1
    limiter: RateLimiter = field(default_factory=RateLimiter)
    verifier: KeyVerifier | None = None
    #: one model lock per process: dlib's detector objects are not documented as thread-safe
    model_lock: threading.Lock = field(default_factory=threading.Lock)
    _locks: dict[str, RWLock] = field(default_factory=lambda: defaultdict(RWLock))
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    jobs: Any = None
    metrics: Any = None
    fashion_models: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verifier is None:
            self.verifier = KeyVerifier(self.lake)

    def lock(self, collection: str) -> RWLock:
        """The reader/writer lock of one collection's indexes."""
        with self._locks_guard:
            return self._locks[collection]

    def drop_cached_indexes(self, collection: str) -> None:
        """Forget the lake's open indexes of a collection so the next use reloads them from disk
        (after a job in another process has written them)."""
        cache = getattr(self.lake, "_indexes", None)
        if not isinstance(cache, dict):
            return
        with self.lock(collection).write():
            for key in [k for k in cache if k[0] == collection]:
                cache.pop(key).close()
