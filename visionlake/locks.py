"""Write locks of a lake: one ingest per collection at a time, refused at once with a clear message.

Two ingests into one collection used to race on the catalog (an ``IntegrityError`` in the writer,
then a pool that never shut down: a hang) and on the index file (last writer wins). A lock file per
collection, held with ``flock`` for the whole run, makes the second one fail immediately with
``busy: another ingest into C is running (pid N)``. ``flock`` locks vanish with their process, so a
crash or ``kill -9`` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from visionlake.errors import Busy, LakeDamaged


@contextmanager
def collection_write_lock(lake: Any, collection: str, what: str = "ingest") -> Iterator[None]:
    """Hold ``<lake>/locks/<collection>.lock`` exclusively, or raise :class:`Busy` naming the holder."""
    folder = lake.root / "locks"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(folder / f"{collection}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except PermissionError:
        raise LakeDamaged(folder, "cannot create lock files (read-only lake?); writes need a writable lake") \
            from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise Busy(f"busy: another {holder.split(' ', 1)[-1] if ' ' in holder else what} into "
                       f"{collection!r} is running (pid {holder.split(' ', 1)[0]}); wait for it to finish "
                       "or stop it, then run this again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
