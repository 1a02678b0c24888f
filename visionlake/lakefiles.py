"""The one writer of a lake's content-addressed files: thumbnails, face crops, kept photos and probes.

Every such file is named by the SHA-256 of what it derives from, so a retry after a crash rewrites the
same name and never makes a second file. What this module adds is that a reader (the service, a
backup, ``check``) never sees half a file and that nobody else on the machine can read biometric
derivatives:

* the bytes go to a temporary file in the destination folder (same file system, so the rename is
  atomic), are flushed with ``fsync`` and only then renamed over the final name;
* files are created 0600 and the folders this creates 0700 (like ``keys/``): face crops and kept
  photos are biometric data.

The folder itself is not fsynced: a crash right after the rename can at worst lose the new name,
which the next run recreates from its source (the catalog row is committed after the file, so it
never points at a file that was not written).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Mode of the files written here (owner read/write only).
FILE_MODE = 0o600
#: Mode of the folders created here (owner only).
DIR_MODE = 0o700


def lake_file_path(root: Path, rel: str) -> Path:
    """``root / rel``, refusing a relative path that would leave the lake (absolute, or with ``..``)."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"not a path inside the lake: {rel!r}")
    return Path(root) / p


def make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents with mode 0700 (existing folders keep their mode)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass


def store_bytes(root: Path, rel: str, data: bytes | memoryview, skip_existing: bool = False) -> Path:
    """Write ``data`` at ``root/rel`` atomically (temp file + fsync + rename), mode 0600.

    ``skip_existing`` leaves a file that is already there alone: for content-addressed names the
    bytes are the same, so rewriting would only cost time.
    """
    dest = lake_file_path(root, rel)
    if skip_existing and dest.exists():
        return dest
    make_dirs(dest.parent)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest


def store_jpeg(root: Path, rel: str, image: object, quality: int = 90, skip_existing: bool = False) -> Path:
    """Encode a PIL image as JPEG and :func:`store_bytes` it."""
    import io

    dest = lake_file_path(root, rel)
    if skip_existing and dest.exists():
        return dest
    img = image if getattr(image, "mode", "RGB") in ("RGB", "L") else image.convert("RGB")  # type: ignore[attr-defined]
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)  # type: ignore[attr-defined]
    return store_bytes(root, rel, buf.getbuffer())


__all__ = ["DIR_MODE", "FILE_MODE", "lake_file_path", "make_dirs", "store_bytes", "store_jpeg"]
