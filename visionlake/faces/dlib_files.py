"""dlib's detector and the ONNX copy of its face ResNet, derived once and kept in the model cache.

Why: building them was most of the start-up of every process that detects or embeds a face (each
``visionlake faces ...`` command, each ingest worker of a faces collection): ``dlib.get_frontal_face_detector()``
parses the detector compiled into dlib (~0.6 s of CPU) and the ONNX graph of the ResNet is rebuilt from
its weights (~0.25 s). Read back from a file they cost milliseconds.

The files live in ``<model cache>/.derived/`` (``VISIONLAKE_MODEL_CACHE``), named after what they are
derived from (dlib's version; the weight file's name, size and modification time), each with the
SHA-256 of its bytes beside it. They are written to a temporary name and renamed, so a killed writer
never leaves half a file; a file that is missing, unreadable or does not match its hash is rebuilt
from dlib; a cache folder that cannot be written only costs the rebuild. The ResNet copy is also still
checked against dlib on a probe chip when it loads (:class:`visionlake.faces.embed.DlibEmbedder`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

FOLDER = ".derived"


def _folder() -> Path | None:
    """``<model cache>/.derived``; None when there is no cache folder to name (no home directory)."""
    from visionlake.models.registry import cache_root

    try:
        return cache_root() / FOLDER
    except (RuntimeError, KeyError, OSError):  # Path.home() without HOME or a passwd entry
        return None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    """The file's bytes if they match the hash recorded beside them, else None."""
    try:
        data = path.read_bytes()
        want = path.with_name(path.name + ".sha256").read_text().strip()
    except OSError:
        return None
    return data if _digest(data) == want else None


def _write(path: Path, data: bytes) -> None:
    """Keep ``data`` at ``path`` (hash first, then the file, each by one rename); failures are ignored:
    the cache only saves time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for target, payload in ((path.with_name(path.name + ".sha256"), _digest(data).encode()), (path, data)):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError:
        pass


def cached_bytes(name: str, build: Callable[[], bytes]) -> bytes:
    """The bytes kept under ``name``, or ``build()``'s (then kept for the next process)."""
    folder = _folder()
    if folder is None:
        return build()
    data = _read(folder / name)
    if data is None:
        data = build()
        _write(folder / name, data)
    return data


def frontal_face_detector() -> Any:
    """``dlib.get_frontal_face_detector()``, loaded from its saved copy (same filters, same scores)."""
    import dlib

    folder = _folder()
    if folder is None:
        return dlib.get_frontal_face_detector()
    path = folder / f"frontal-face-hog-dlib-{dlib.__version__}.svm"
    if _read(path) is not None:
        try:
            return dlib.fhog_object_detector(str(path))
        except RuntimeError:  # unreadable to dlib: rebuilt below
            pass
    det = dlib.get_frontal_face_detector()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".svm")
        os.close(fd)
        try:
            det.save(tmp)
            _write(path, Path(tmp).read_bytes())
        finally:
            Path(tmp).unlink(missing_ok=True)
    except (OSError, RuntimeError):
        pass
    return det


def resnet_onnx_bytes(model_path: str, build: Callable[[str], bytes]) -> bytes:
    """The ONNX copy of the face ResNet at ``model_path`` (``build(model_path)`` makes it)."""
    st = Path(model_path).stat()
    name = f"{Path(model_path).stem}-{st.st_size}-{st.st_mtime_ns}.onnx"
    return cached_bytes(name, lambda: build(model_path))
