"""The manifest that makes an index folder one unit: written last, verified on open.

An index is several files (``index.faiss``, ``index.json``, ``rerank.faiss`` or ``rerank.fp16.npy``);
renaming each one is atomic but the set is not. ``MANIFEST`` lists the SHA-256 and size of every
file of the current version and is replaced (temp file, fsync, rename) only after all of them are in place. On open,
each listed file must match: a crash between two renames, a truncated or garbled file, or a file
from another save is reported as :class:`~visionlake.errors.LakeDamaged` naming the file, never
loaded as a mix of two versions (which used to leave an enrolled person unidentifiable).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from visionlake.errors import LakeDamaged

MANIFEST = "MANIFEST"
LOCK = ".lock"


def write_manifest(folder: Path, digests: dict[str, tuple[str, int]]) -> None:
    """Replace ``MANIFEST`` atomically with (sha256, bytes) of each file; bumps the generation."""
    old = read_manifest(folder, missing_ok=True, strict=False) or {}
    body = {
        "version": 1,
        "generation": int(old.get("generation", 0)) + 1,
        "files": {name: {"sha256": d, "bytes": n} for name, (d, n) in sorted(digests.items())},
    }
    data = json.dumps(body, indent=1).encode()
    tmp = folder / f"{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / MANIFEST)
    _fsync_dir(folder)


def read_manifest(folder: Path, missing_ok: bool = True, strict: bool = True) -> dict | None:
    """The parsed manifest (None when absent and ``missing_ok``); damage raises when ``strict``."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise LakeDamaged(path, "missing") from None
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("files"), dict):
            raise ValueError("no file list")
        return body
    except (ValueError, UnicodeDecodeError) as exc:
        if strict:
            raise LakeDamaged(path, f"not a valid manifest ({exc})") from None
        return None


def verify_manifest(folder: Path) -> dict | None:
    """Check every file listed in ``MANIFEST`` (size, then SHA-256). None for folders saved before
    manifests existed (accepted as they are, so old lakes still open)."""
    body = read_manifest(folder)
    if body is None:
        return None
    for name, want in body["files"].items():
        path = folder / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise LakeDamaged(path, "missing (listed in MANIFEST)") from None
        if size != int(want.get("bytes", -1)):
            raise LakeDamaged(path, f"{size} bytes, MANIFEST says {want.get('bytes')} (truncated or "
                                    "replaced outside a save)")
        if file_sha256(path) != want.get("sha256"):
            raise LakeDamaged(path, "content does not match its SHA-256 in MANIFEST (garbled or torn save)")
    return body


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on ``folder/.lock`` while saving: two processes never interleave their files."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (the directory entry), where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

