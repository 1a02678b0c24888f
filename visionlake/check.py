"""``visionlake check`` and ``visionlake repair``: is the lake whole, and rebuild what can be derived.

What is checked, in order (each step only if the previous ones let it run):

1. ``lake.json`` parses and names a known index engine;
2. the catalog: SQLite ``quick_check`` and ``foreign_key_check`` (or a connection, for a server);
3. the key, when the catalog holds encrypted face templates: present, well-formed, and it decrypts them;
4. every vector index of a space derived from the catalog (faces, fashion): its files match their
   ``MANIFEST`` (SHA-256), it loads, and it holds exactly the catalog's ids;
5. every derived file the catalog points at (thumbnails, face crops, fashion heads): present and a
   readable image / file;
6. file modes: lake files should be private (0600 files, 0700 folders) -- a warning, not a failure.

``repair`` rebuilds indexes from the catalog (the single source of truth), regenerates thumbnails
and face crops (box and landmarks are in the catalog; :mod:`visionlake.faces.crop_repair`) from the
source files when they are still there with the same SHA-256, rewrites a damaged
``lake.json`` with defaults, tightens file modes, and lists what it could not fix (a damaged catalog,
a missing key, derived files whose source is gone).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import select

from visionlake.errors import LakeDamaged, VisionLakeError


class Report:
    """Problems found (each: the file, what is wrong, whether ``repair`` can fix it) and warnings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.checked: dict[str, int] = {}

    def problem(self, file: Any, what: str, repairable: bool, kind: str) -> None:
        self.problems.append({"file": _rel(self.root, file), "problem": what, "repairable": repairable,
                              "kind": kind})

    def warn(self, file: Any, what: str) -> None:
        self.warnings.append({"file": _rel(self.root, file), "warning": what})

    def as_dict(self) -> dict[str, Any]:
        return {"lake": str(self.root), "ok": not self.problems, "problems": self.problems,
                "warnings": self.warnings[:200], "warnings_total": len(self.warnings), "checked": self.checked}


def _rel(root: Path, file: Any) -> str:
    try:
        return str(Path(str(file)).resolve().relative_to(root))
    except ValueError:
        return str(file)


# ------------------------------------------------------------------------------------------ check
def check_lake(root: str | os.PathLike[str] | None = None, hash_files: bool = True) -> dict[str, Any]:
    """Check a lake without changing anything; ``ok`` is True when nothing needs repair."""
    from visionlake.config import lake_path
    from visionlake.lake import read_settings

    root_p = lake_path(root).resolve()
    rep = Report(root_p)
    settings_file = root_p / "lake.json"
    if not settings_file.exists():
        rep.problem(settings_file, "missing: not a lake (or lake.json was deleted)", True, "settings")
        settings: dict[str, Any] = {}
    else:
        try:
            settings = read_settings(settings_file)
        except LakeDamaged as exc:
            rep.problem(settings_file, exc.problem, True, "settings")
            settings = {}
    catalog_ok = _check_catalog(rep, root_p, settings)
    if not catalog_ok:
        return rep.as_dict()
    lake = _open_for_check(root_p, settings)
    try:
        _check_key(rep, lake)
        _check_indexes(rep, lake, settings)
        _check_derived_files(rep, lake, hash_files)
        _check_modes(rep, root_p)
    finally:
        lake.close()
    return rep.as_dict()


def _open_for_check(root: Path, settings: dict[str, Any]) -> Any:
    """A Lake object even when lake.json is damaged (defaults then), never creating anything."""
    from visionlake.lake import Lake

    try:
        return Lake(root, create=False)
    except LakeDamaged:
        lake = Lake.__new__(Lake)  # lake.json unreadable: same object with default settings
        from sqlalchemy.orm import sessionmaker

        from visionlake.catalog.db import create_catalog_engine, sqlite_url

        lake.root = root
        lake.settings = {"index": "faiss", **{k: v for k, v in settings.items() if k == "catalog_url"}}
        lake.read_only = not os.access(root, os.W_OK)
        lake.catalog_url = lake.settings.get("catalog_url") or sqlite_url(root / "catalog.sqlite")
        lake.engine = create_catalog_engine(lake.catalog_url)
        lake._sessions = sessionmaker(lake.engine, expire_on_commit=False)
        lake._cipher = None
        lake._indexes = {}
        lake._headers = {}
        lake._header_paths = {}
        lake._resyncing = set()
        lake._rebuilt = set()
        return lake


def _check_catalog(rep: Report, root: Path, settings: dict[str, Any]) -> bool:
    url = settings.get("catalog_url") or os.environ.get("VISIONLAKE_CATALOG_URL")
    if url and not url.startswith("sqlite"):
        from sqlalchemy import create_engine, text

        try:
            with create_engine(url).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            rep.problem("catalog", f"cannot connect ({str(exc).splitlines()[0][:160]})", False, "catalog")
            return False
        rep.checked["catalog"] = 1
        return True
    db = root / "catalog.sqlite"
    if not db.exists():
        rep.problem(db, "missing (every image record lives there; restore it from a backup)", False, "catalog")
        return False
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            res = con.execute("PRAGMA quick_check").fetchall()
            if [r[0] for r in res] != ["ok"]:
                rep.problem(db, "integrity check failed: " + "; ".join(str(r[0]) for r in res[:3]), False,
                            "catalog")
                return False
            fk = con.execute("PRAGMA foreign_key_check").fetchall()
            if fk:
                rep.problem(db, f"{len(fk)} rows point at rows that do not exist (first: table {fk[0][0]})",
                            False, "catalog")
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "images" not in tables or "collections" not in tables:
                rep.problem(db, "not a visionlake catalog (no images/collections tables)", False, "catalog")
                return False
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        rep.problem(db, f"not a readable SQLite database ({exc})", False, "catalog")
        return False
    rep.checked["catalog"] = 1
    return True


def _check_key(rep: Report, lake: Any) -> None:
    from visionlake.faces.models import Face

    with lake.session() as s:
        blob = s.scalar(select(Face.embedding).where(Face.embedding.is_not(None)).limit(1))
    if blob is None:
        return
    rep.checked["encrypted_data"] = 1
    key_file = lake.root / "keys" / "lake.key"
    if not os.environ.get("VISIONLAKE_KEY") and not key_file.exists():
        rep.problem(key_file, "missing while the catalog holds encrypted face templates: restore the key "
                              "(repair cannot recreate it; a new key would make every face unreadable)",
                    False, "key")
        return
    try:
        key = load_key(lake.root)
        from visionlake.crypto import LakeCipher
        from visionlake.faces.sync import unseal

        unseal(LakeCipher(key), blob)
    except LakeDamaged as exc:
        rep.problem(exc.path, exc.problem, False, "key")
    except VisionLakeError as exc:
        rep.problem(key_file, f"does not decrypt the stored templates ({exc.message})", False, "key")


def load_key(root: Path) -> bytes:
    """The lake key (env or file), validated: a garbled key file is :class:`LakeDamaged`, not a traceback."""
    env = os.environ.get("VISIONLAKE_KEY")
    src: Any = "VISIONLAKE_KEY" if env else root / "keys" / "lake.key"
    try:
        raw = env.encode() if env else Path(src).read_bytes()
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise LakeDamaged(src, "not a base64-encoded key") from None
    if len(key) != 32:
        raise LakeDamaged(src, f"holds {len(key)} bytes, a lake key has 32")
    return key


def _check_indexes(rep: Report, lake: Any, settings: dict[str, Any]) -> None:
    from visionlake.resync import DERIVED_SPACES, catalog_dim, catalog_ids

    engine = settings.get("index", "faiss")
    n = 0
    for col in lake.collections():
        for space in DERIVED_SPACES:
            try:
                dim = catalog_dim(lake, col.name, space)
            except VisionLakeError as exc:  # e.g. the key cannot decrypt: reported by _check_key
                rep.warn(lake.collection_dir(col.name), f"{space} index not checked: {exc.message}")
                continue
            folder = lake.collection_dir(col.name) / "index" / space
            if engine == "faiss":
                ix = _load_faiss(rep, lake, folder, space, dim)
                if ix is False:
                    continue
            else:
                ix = lake.index(col.name, space, dim) if dim else None
            want = catalog_ids(lake, col.id, space)
            have = set() if ix is None else set(ix.ids().tolist())
            n += 1
            if ix is not None and dim is not None and int(ix.dim) != int(dim):
                rep.problem(folder, f"{space} index holds {ix.dim}-d vectors, the catalog's give {dim}-d",
                            True, "index")
            if want - have:
                rep.problem(folder, f"{space} index lacks {len(want - have)} of the catalog's "
                                    f"{len(want)} vectors", True, "index")
            if have - want:
                rep.problem(folder, f"{space} index holds {len(have - want)} ids the catalog does not have",
                            True, "index")
            if space == "faces" and ix is not None and hasattr(ix, "metadata"):
                _check_face_labels(rep, lake, col.id, ix, folder)
    rep.checked["indexes"] = n


def _load_faiss(rep: Report, lake: Any, folder: Path, space: str, dim: int | None) -> Any:
    """The index as saved (not the lake's self-healing open); None if absent, False if damaged."""
    from visionlake.index.faiss_index import FaissIndex

    if not (folder / "index.json").exists() and not (folder / "MANIFEST").exists():
        return None
    try:
        header = json.loads((folder / "index.json").read_text())
        d = int(header["dim"])
        cipher = None
        if header.get("encrypted"):
            from visionlake.crypto import LakeCipher

            cipher = LakeCipher(load_key(lake.root))
        return FaissIndex(folder, dim=d or dim or 1, metric=header.get("metric", "cosine"), cipher=cipher)
    except LakeDamaged as exc:
        rep.problem(exc.path, exc.problem, exc.path.endswith(("index.json", ".faiss", ".npy", "MANIFEST")), "index")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, FileNotFoundError) as exc:
        rep.problem(folder / "index.json", f"not a valid index header ({exc})", True, "index")
    except VisionLakeError as exc:
        rep.problem(folder / "index.faiss", f"cannot be read: {exc.message}", True, "index")
    return False


def _check_face_labels(rep: Report, lake: Any, collection_id: int, ix: Any, folder: Path) -> None:
    from visionlake.faces.models import Face

    with lake.session() as s:
        rows = s.execute(select(Face.id, Face.person_id).where(Face.collection_id == collection_id,
                                                               Face.embedding.is_not(None))).all()
    wrong = [i for i, p in rows if (ix.metadata(int(i)) or {}).get("person_id") != p]
    if wrong:
        rep.problem(folder, f"faces index gives {len(wrong)} faces the wrong person", True, "index")


def _check_derived_files(rep: Report, lake: Any, hash_files: bool) -> None:
    from visionlake.catalog.models import Image

    with lake.session() as s:
        thumbs = s.execute(select(Image.id, Image.thumbnail).where(Image.thumbnail.is_not(None))).all()
    bad = 0
    for _id, rel in thumbs:
        if not _image_ok(lake.root / rel, hash_files):
            bad += 1
            if bad <= 20:
                rep.problem(lake.root / rel, "thumbnail missing or not a readable image", True, "thumbnail")
    if bad > 20:
        rep.problem(lake.root / "collections", f"{bad - 20} more thumbnails missing or unreadable", True,
                    "thumbnail")
    rep.checked["thumbnails"] = len(thumbs)
    try:
        from visionlake.faces.models import Face

        with lake.session() as s:
            crops = s.scalars(select(Face.crop).where(Face.crop.is_not(None))).all()
    except Exception:  # noqa: BLE001 - no faces tables in an old catalog
        crops = []
    bad = 0
    for rel in crops:
        if not _image_ok(lake.root / rel, hash_files):
            bad += 1
            if bad <= 20:
                rep.problem(lake.root / rel, "face crop missing or not a readable image", True, "crop")
    if bad > 20:
        rep.problem(lake.root / "collections", f"{bad - 20} more face crops missing or unreadable", True, "crop")
    rep.checked["crops"] = len(crops)


def _image_ok(path: Path, decode: bool) -> bool:
    if not path.is_file():
        return False
    if not decode:
        return True
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as im:
            im.load()  # decodes every byte: a truncated or garbled JPEG fails here
        return True
    except Exception:  # noqa: BLE001 - any decoder error means damaged
        return False


def _loose_entries(root: Path):
    """Files and folders under ``root`` (links skipped) that others may read: what check reports
    and repair tightens, found by one walk so the two never disagree."""
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            try:
                mode = p.lstat().st_mode
            except OSError:
                continue
            if not stat.S_ISLNK(mode) and mode & 0o077:
                yield p, mode


def _check_modes(rep: Report, root: Path) -> None:
    loose = 0
    for p, mode in _loose_entries(root):
        loose += 1
        if loose <= 5:
            rep.warn(p, f"mode {stat.S_IMODE(mode):o}: readable by others (repair sets 0600/0700)")
    rep.checked["loose_modes"] = loose


# ------------------------------------------------------------------------------------------ repair
def repair_lake(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Fix what can be derived again; returns what was done, what could not be, and a fresh check."""
    from visionlake.config import lake_path

    root_p = lake_path(root).resolve()
    before = check_lake(root_p)
    done: list[str] = []
    could_not: list[dict[str, Any]] = [p for p in before["problems"] if not p["repairable"]]
    kinds = {p["kind"] for p in before["problems"] if p["repairable"]}
    if "settings" in kinds:
        _repair_settings(root_p, done)
    if any(p["kind"] == "catalog" for p in could_not):
        return {"lake": str(root_p), "repaired": done, "could_not": could_not, "check": check_lake(root_p)}
    from visionlake.lake import Lake

    lake = Lake(root_p, create=False)
    try:
        if "index" in kinds:
            _repair_indexes(lake, before, done, could_not)
        if "thumbnail" in kinds:
            _repair_thumbnails(lake, done, could_not)
        if "crop" in kinds:
            _repair_crops(lake, done, could_not)
    finally:
        lake.close()
    _repair_modes(root_p, done)
    after = check_lake(root_p)
    return {"lake": str(root_p), "ok": after["ok"], "repaired": done, "could_not": could_not, "check": after}


def _repair_settings(root: Path, done: list[str]) -> None:
    path = root / "lake.json"
    if path.exists():
        os.replace(path, root / "lake.json.damaged")
    path.write_text(json.dumps({"version": 1, "catalog_url": None, "index": "faiss"}, indent=2))
    done.append("lake.json rewritten with defaults (embedded catalog, FAISS); the damaged one is "
                "lake.json.damaged: copy back any catalog_url/index setting you used")


def _repair_indexes(lake: Any, before: dict[str, Any], done: list[str], could_not: list[dict[str, Any]]) -> None:
    """Rebuild every derived index from the catalog: move the old files aside, resync, save."""
    from visionlake.resync import DERIVED_SPACES, sync_space

    damaged = {p["file"] for p in before["problems"] if p["kind"] == "index"}
    for col in lake.collections():
        for space in DERIVED_SPACES:
            folder = lake.collection_dir(col.name) / "index" / space
            rel = _rel(lake.root, folder)
            if not any(f == rel or f.startswith(rel + "/") for f in damaged):
                continue
            if folder.exists() and lake.settings.get("index", "faiss") == "faiss":
                for f in list(folder.iterdir()):
                    if f.name != ".lock":
                        f.unlink()
            try:
                rep = sync_space(lake, col.name, space, save=True)
                ix = lake._indexes.get((col.name, space))
                if ix is not None:
                    ix.save()
                done.append(f"{space} index of {col.name!r} rebuilt from the catalog ({rep.get('count', 0)} vectors)")
            except VisionLakeError as exc:
                could_not.append({"file": rel, "problem": f"rebuild failed: {exc.message}", "kind": "index"})


def _repair_thumbnails(lake: Any, done: list[str], could_not: list[dict[str, Any]]) -> None:
    """Regenerate thumbnails from their source files, when those still hold the same bytes."""
    from visionlake.analysers.base import DecodedImage, WorkerContext
    from visionlake.analysers.thumbnail import ThumbnailAnalyser
    from visionlake.catalog.models import Collection, Image
    from visionlake.imageio import decode_rgb

    analyser = ThumbnailAnalyser()
    fixed = 0
    with lake.session() as s:
        rows = s.execute(select(Image.id, Image.path, Image.sha256, Image.thumbnail, Collection.name)
                         .join(Collection, Collection.id == Image.collection_id)
                         .where(Image.thumbnail.is_not(None))).all()
    for _id, src, sha, rel, cname in rows:
        dest = lake.root / rel
        if _image_ok(dest, True):
            continue
        dest.unlink(missing_ok=True)
        try:
            data = Path(src).read_bytes()
        except OSError:
            could_not.append({"file": rel, "problem": f"source {src!r} is gone", "kind": "thumbnail"})
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            could_not.append({"file": rel, "problem": f"source {src!r} changed since ingest", "kind": "thumbnail"})
            continue
        img = decode_rgb(data)[0]
        ctx = WorkerContext(lake_root=lake.root, collection=cname, collection_dir=lake.collection_dir(cname))
        analyser.analyse([DecodedImage(path=src, sha256=sha, image=img)], ctx)
        fixed += 1
    if fixed:
        done.append(f"{fixed} thumbnails regenerated from their source files")


def _repair_crops(lake: Any, done: list[str], could_not: list[dict[str, Any]]) -> None:
    """Cut face crops again from their source photos (never those of an erased person)."""
    from visionlake.faces.crop_repair import repair_crops

    fixed, failed = repair_crops(lake, lambda p: _image_ok(p, True))
    could_not.extend(failed)
    if fixed:
        done.append(f"{fixed} face crops regenerated from their source photos")


def _repair_modes(root: Path, done: list[str]) -> None:
    n = 0
    for p, mode in list(_loose_entries(root)):
        try:
            os.chmod(p, 0o700 if stat.S_ISDIR(mode) else 0o600)
            n += 1
        except OSError:
            continue
    if n:
        done.append(f"{n} files/folders made private (0600/0700)")
