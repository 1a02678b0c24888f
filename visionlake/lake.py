"""The lake: one folder holding the catalog, the vector indexes and derived files.

Layout::

    <lake>/lake.json                       settings (catalog URL when not the embedded SQLite)
    <lake>/catalog.sqlite                  the catalog (SQLite in WAL mode)
    <lake>/keys/lake.key                   AES key for face templates (0600), unless VISIONLAKE_KEY
    <lake>/collections/<name>/thumbs/      thumbnails, content-addressed by SHA-256
    <lake>/collections/<name>/crops/       face crops
    <lake>/collections/<name>/index/<space>/   vector index of one embedding space

Nothing here needs a server: the embedded default is SQLite + FAISS files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from visionlake.catalog.db import create_catalog_engine, ensure_schema, sqlite_url
from visionlake.catalog.models import Collection, Image, SourcePath
from visionlake.config import lake_path
from visionlake.errors import AlreadyExists, BadInput, LakeDamaged, NotFound

log = logging.getLogger(__name__)

PURPOSE_NAMES = ("plain", "faces", "fashion")
#: Embedding spaces the analysers write (one vector index each per collection).
INDEX_SPACES = ("faces", "fashion")


class Lake:
    """A lake folder opened for use. Cheap to create; open one per process."""

    def __init__(self, root: str | os.PathLike[str] | None = None, catalog_url: str | None = None,
                 create: bool = True) -> None:
        self.root = lake_path(root).resolve()
        private_umask()
        settings_file = self.root / "lake.json"
        if not settings_file.exists():
            if not create:
                raise NotFound(f"no lake at {self.root}; run 'visionlake init' first")
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            settings = {"version": 1, "catalog_url": catalog_url, "index": "faiss"}
            _write_settings(self.root, settings)
        self.settings: dict[str, Any] = read_settings(settings_file)
        url = catalog_url or self.settings.get("catalog_url") or os.environ.get("VISIONLAKE_CATALOG_URL")
        self.read_only = not os.access(self.root, os.W_OK)
        self.catalog_url = url or sqlite_url(self.root / "catalog.sqlite")
        self.engine = open_catalog(self.catalog_url, self.root / "catalog.sqlite", self.read_only)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._cipher = None
        self._indexes: dict[tuple[str, str], Any] = {}
        self._headers: dict[str, tuple[int, dict[str, Any]]] = {}
        self._header_paths: dict[tuple[str, str], str] = {}
        self._resyncing: set[tuple[str, str]] = set()
        self._rebuilt: set[tuple[str, str]] = set()
        from visionlake.keyring import register

        register(self)  # the audit log reaches the lake's keys from a session's engine
        self._finish_erasures()

    def _finish_erasures(self) -> None:
        """Finish erasures of people that a crash interrupted: their files must not outlive the crash.

        Each area's ``on_lake_open`` hook (:data:`visionlake.areas.AREAS`; for faces one query on an,
        almost always, empty journal table, see :mod:`visionlake.faces.erasure`).
        """
        from visionlake.areas import lake_open_hooks

        for hook in lake_open_hooks():
            hook(self)

    # ------------------------------------------------------------------ sessions
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    # ------------------------------------------------------------------ privacy
    @property
    def cipher(self):  # -> LakeCipher
        """AES-GCM cipher for face templates: the key is checked against the lake's recorded fingerprint,
        and created on first use only for a lake that holds no encrypted data (:mod:`visionlake.keyring`)."""
        if self._cipher is None:
            from visionlake.keyring import open_cipher

            self._cipher = open_cipher(self)
        return self._cipher

    # ------------------------------------------------------------------ collections
    def create_collection(self, name: str, purpose: str = "plain", settings: dict[str, Any] | None = None
                          ) -> Collection:
        """Create a collection; its ``purpose`` (plain, faces, fashion) decides the analysers."""
        if purpose not in PURPOSE_NAMES:
            raise BadInput(f"unknown purpose {purpose!r}; choose one of {', '.join(PURPOSE_NAMES)}")
        if not name or "/" in name or name.startswith("."):
            raise BadInput(f"invalid collection name {name!r}")
        with self.session() as s:
            if s.scalar(select(Collection).where(Collection.name == name)):
                raise AlreadyExists(f"collection {name!r} already exists")
            col = Collection(name=name, purpose=purpose, settings=settings or {})
            s.add(col)
        self.collection_dir(name).mkdir(parents=True, exist_ok=True)
        return col

    def collection(self, name: str) -> Collection:
        """Look up a collection by name (:class:`NotFound` with the known names otherwise)."""
        with self.session() as s:
            col = s.scalar(select(Collection).where(Collection.name == name))
            if col is None:
                known = ", ".join(s.scalars(select(Collection.name)).all()) or "none yet"
                raise NotFound(f"no collection named {name!r} (collections: {known})")
            return col

    def collections(self) -> list[Collection]:
        """All collections, by name."""
        with self.session() as s:
            return list(s.scalars(select(Collection).order_by(Collection.name)).all())

    def delete_collection(self, name: str) -> None:
        """Delete a collection, its catalog rows, indexes and derived files."""
        col = self.collection(name)
        for key in [k for k in self._indexes if k[0] == name]:
            self._indexes.pop(key).close()
        engine = self.settings.get("index", "faiss")
        if engine != "faiss":  # vectors live in the Milvus server / Lite file, not in the folder
            from visionlake.index.milvus_index import MilvusIndex, existing_dim

            for space in INDEX_SPACES:
                dim = existing_dim(engine, f"{name}__{space}")
                if dim is not None:
                    MilvusIndex(engine, dim=dim, collection=f"{name}__{space}").drop()
        with self.session() as s:
            s.delete(s.get(Collection, col.id))
        shutil.rmtree(self.collection_dir(name), ignore_errors=True)

    def write_file(self, rel: str, data: bytes | memoryview, skip_existing: bool = False) -> Path:
        """Write a content-addressed file (thumbnail, crop, kept photo) atomically, mode 0600.

        The one writer of such files (:func:`visionlake.lakefiles.store_bytes`; worker processes
        without a ``Lake`` call that function with the lake root).
        """
        from visionlake.lakefiles import store_bytes

        return store_bytes(self.root, rel, data, skip_existing=skip_existing)

    def collection_dir(self, name: str) -> Path:
        """Folder of a collection's derived files."""
        return self.root / "collections" / name

    def images(self, collection: str, where: dict[str, Any] | None = None, limit: int | None = None,
               offset: int = 0) -> list[Image]:
        """Images of a collection whose metadata match ``where`` (field -> value or list of values).

        Metadata values are stored as strings, so ``year=2012`` and ``year="2012"`` both match.
        """
        stmt = self._image_filter(select(Image), collection, where).order_by(Image.id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.session() as s:
            return list(s.scalars(stmt).all())

    def count_images(self, collection: str, where: dict[str, Any] | None = None) -> int:
        """How many images :meth:`images` would return without a limit (for "20 of 124")."""
        stmt = self._image_filter(select(func.count(Image.id)), collection, where)
        with self.session() as s:
            return int(s.scalar(stmt) or 0)

    def _image_filter(self, stmt: Any, collection: str, where: dict[str, Any] | None) -> Any:
        col = self.collection(collection)
        stmt = stmt.where(Image.collection_id == col.id)
        for key, want in (where or {}).items():
            check_meta_key(key)
            field = Image.meta[key].as_string()
            if isinstance(want, list | tuple | set):
                stmt = stmt.where(field.in_([str(w) for w in want]))
            else:
                stmt = stmt.where(field == str(want))
        return stmt

    # ------------------------------------------------------------------ indexes
    def index(self, collection: str, space: str, dim: int, metric: str = "cosine", encrypted: bool = False):
        """The vector index of one embedding space of a collection (opened once, then cached).

        The engine comes from the lake setting ``index`` (``faiss`` by default, or a Milvus URI).
        """
        from visionlake.index import open_index

        key = (collection, space)
        if key not in self._indexes:
            engine = self.settings.get("index", "faiss")
            cipher = self.cipher if encrypted else None
            if engine == "faiss":
                location: str | Path = self.collection_dir(collection) / "index" / space
            else:
                location = engine
            try:
                ix = open_index(location, dim=dim, metric=metric, cipher=cipher,  # type: ignore[arg-type]
                                collection=f"{collection}__{space}")
            except LakeDamaged as exc:
                ix = self._rebuild_damaged_index(exc, collection, space, location, dim, metric, cipher)
            self._indexes[key] = ix
            self._resync_on_open(collection, space)
        return self._indexes[key]

    def forget_index(self, collection: str, space: str | None = None) -> None:
        """Close this lake's open copy of a collection's index (one space, or all) so the next
        :meth:`index` reloads it from disk: another process rewrote it."""
        for key in [k for k in self._indexes if k[0] == collection and (space is None or k[1] == space)]:
            self._indexes.pop(key).close()

    def index_header_path(self, collection: str, space: str) -> str:
        """Path of a FAISS index's ``index.json`` (the file every save replaces, so its modification
        time says when the index last changed), as a string and remembered: hot paths stat it on
        every request, and building it through ``pathlib`` cost more than the ``stat`` itself."""
        key = (collection, space)
        path = self._header_paths.get(key)
        if path is None:
            if len(self._header_paths) > 10_000:
                self._header_paths.clear()
            path = self._header_paths[key] = os.fspath(self.collection_dir(collection) / "index" / space / "index.json")
        return path

    def index_header(self, collection: str, space: str) -> dict[str, Any] | None:
        """What an index of a collection is (engine, kind, dim, count...), without loading its vectors.

        None when the space was never written. FAISS headers are read from ``index.json`` (cached by
        modification time, so hot paths can call this per request); Milvus is asked directly.
        """
        engine = self.settings.get("index", "faiss")
        if engine == "faiss":
            key = self.index_header_path(collection, space)
            try:
                mtime = os.stat(key).st_mtime_ns
            except FileNotFoundError:
                return None
            cached = self._headers.get(key)
            if cached is None or cached[0] != mtime:
                path = Path(key)
                try:
                    header = json.loads(path.read_text())
                    if not isinstance(header, dict) or "dim" not in header:
                        raise ValueError("no dim")
                except (ValueError, UnicodeDecodeError) as exc:
                    return self._damaged_header(collection, space, path, exc)
                header.pop("metadata", None)
                header["space"] = space
                cached = (mtime, header)
                self._headers[key] = cached
            return dict(cached[1])
        from visionlake.index.milvus_index import existing_dim

        dim = existing_dim(engine, f"{collection}__{space}")
        if dim is None:
            return None
        header = self.index(collection, space, dim).describe()
        header["space"] = space
        return header

    def set_setting(self, key: str, value: Any) -> None:
        """Persist a lake-level setting in ``lake.json``.

        The new settings are validated as the next open will read them, so a call never leaves a
        lake that ``visionlake check`` calls damaged, and written atomically, so a crash mid-write
        leaves the old file, not a torn one.
        """
        settings = {**self.settings, key: value}
        try:
            validate_settings(settings, self.root / "lake.json")
        except LakeDamaged as exc:
            raise BadInput(f"lake setting {key!r} refused: {exc.problem}") from None
        _write_settings(self.root, settings)
        self.settings = settings

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Counts per collection, bytes on disk and index descriptions, for ``visionlake info``."""
        out: dict[str, Any] = {"lake": str(self.root), "catalog": _redact(self.catalog_url), "collections": []}
        with self.session() as s:
            for col in s.scalars(select(Collection).order_by(Collection.name)):
                images = s.scalar(select(func.count(Image.id)).where(Image.collection_id == col.id)) or 0
                by_status = dict(
                    s.execute(
                        select(SourcePath.status, func.count(SourcePath.id))
                        .where(SourcePath.collection_id == col.id)
                        .group_by(SourcePath.status)
                    ).all()
                )
                cdir = self.collection_dir(col.name)
                indexes = []
                idx_root = cdir / "index"
                spaces = set(INDEX_SPACES)
                if idx_root.exists():
                    spaces |= {p.name for p in idx_root.iterdir() if p.is_dir()}
                for space in sorted(spaces):
                    h = self.index_header(col.name, space)
                    if h is not None:
                        if self.settings.get("index", "faiss") == "faiss":
                            h["bytes_on_disk"] = _dir_bytes(idx_root / space)
                        indexes.append(h)
                extra: dict[str, Any] = {}
                if col.purpose == "faces":  # which face pack embeds it (see faces.collection_pack)
                    fo = (col.settings or {}).get("faces_options") or {}
                    extra["face_pack"] = fo.get("pack", "dlib")
                    if (col.settings or {}).get("faces_switch"):
                        extra["face_pack_switch"] = col.settings["faces_switch"]
                out["collections"].append(
                    {
                        **extra,
                        "name": col.name,
                        "purpose": col.purpose,
                        "images": images,
                        "paths": by_status,
                        "bytes_on_disk": _dir_bytes(cdir),
                        "indexes": indexes,
                        # which model embedded a fashion collection (FashionSigLIP or the offline backbone)
                        **({"fashion_model": (col.settings or {})["fashion_model"]}
                           if (col.settings or {}).get("fashion_model") else {}),
                        # an unfinished `fashion upgrade` (layout pooled -> rows)
                        **({"fashion_upgrade": {k: v for k, v in col.settings["fashion_upgrade"].items()
                                                if k in ("stage", "started_at")}}
                           if (col.settings or {}).get("fashion_upgrade") else {}),
                    }
                )
        out["bytes_on_disk"] = _dir_bytes(self.root)
        # licences accepted in this lake (non-commercial face packs): who, when, which terms
        out["licences"] = dict(self.settings.get("licences") or {})
        return out

    # ------------------------------------------------------------------ reliability (derived indexes)
    def _rebuild_damaged_index(self, exc: LakeDamaged, collection: str, space: str, location: Any, dim: int,
                               metric: str, cipher: Any) -> Any:
        """A damaged index of a space derived from the catalog is rebuilt from it, not fatal.

        Only FAISS folders of derived spaces qualify; anything else (an index of another space, a
        Milvus error) is re-raised so that the command stops with the one-line message.
        """
        from visionlake.index.faiss_index import FaissIndex
        from visionlake.resync import DERIVED_SPACES

        if space not in DERIVED_SPACES or not isinstance(location, Path):
            raise exc
        log.warning("%s (rebuilding the %s index of %r from the catalog)", exc.problem, space, collection)
        ix = FaissIndex(None, dim=dim, metric=metric, cipher=cipher)  # type: ignore[arg-type]
        ix.path = location  # the next save replaces the damaged files as one unit
        self._rebuilt.add((collection, space))
        return ix

    def _resync_on_open(self, collection: str, space: str) -> None:
        """Check a freshly opened index against the catalog and repair it (missing vectors re-added,
        extras removed). Saved when the lake is writable; a read-only lake keeps the fix in memory."""
        from visionlake.resync import DERIVED_SPACES, sync_space

        if space not in DERIVED_SPACES or (collection, space) in self._resyncing:
            return
        self._resyncing.add((collection, space))
        try:
            report = sync_space(self, collection, space, save=False, backfill=False)
            changed = any(report.get(k) for k in ("added", "removed", "relabelled"))
            if changed or (collection, space) in self._rebuilt:
                log.info("%s index of %r resynced from the catalog: %s", space, collection, report)
                try:
                    self._indexes[(collection, space)].save()
                    self._rebuilt.discard((collection, space))
                except OSError as exc:  # read-only lake: keep the repaired copy in memory only
                    log.info("index not saved (%s); repaired in memory", exc)
        except NotFound:
            pass
        finally:
            self._resyncing.discard((collection, space))

    def _damaged_header(self, collection: str, space: str, path: Path, exc: Exception) -> dict[str, Any]:
        """An unreadable ``index.json``: derived spaces take the dimension from the catalog (opening the
        index then rebuilds it); any other space is a one-line error naming the file."""
        from visionlake.resync import DERIVED_SPACES, catalog_dim

        dim = catalog_dim(self, collection, space) if space in DERIVED_SPACES else None
        if dim is None:
            raise LakeDamaged(path, f"not a valid index header ({exc})") from None
        return {"engine": "faiss", "dim": dim, "count": None, "space": space,
                "damaged": f"{path.name}: not a valid index header"}

    def close(self) -> None:
        """Close indexes and the database engine."""
        for ix in self._indexes.values():
            ix.close()
        self._indexes.clear()
        self.engine.dispose()


#: Values of lake.json's ``index`` that name a Milvus deployment (anything else but "faiss" is refused:
#: it used to be taken as a folder and wrote FAISS files into the current directory).
MILVUS_PREFIXES = ("milvus://", "milvus-lite:", "http://", "https://")


def private_umask() -> None:
    """Lake files hold faces and personal data: create them 0600 and folders 0700, like ``keys/``.

    Done with the process umask (``| 0o077``) because thumbnails, crops, the catalog, its WAL and
    index files are created in many places, by Pillow, SQLite and FAISS, not only by our own code.
    """
    old = os.umask(0o077)
    os.umask(old | 0o077)


def _write_settings(root: Path, settings: dict[str, Any]) -> None:
    """``lake.json`` through the one atomic writer (temp file + fsync + rename, mode 0600)."""
    from visionlake.lakefiles import store_bytes

    store_bytes(root, "lake.json", json.dumps(settings, indent=2).encode())


def read_settings(path: Path) -> dict[str, Any]:
    """``lake.json``, validated: damage is one line naming the file, never a traceback."""
    try:
        settings = json.loads(path.read_text())
    except PermissionError:
        raise LakeDamaged(path, "cannot be read (permissions)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LakeDamaged(path, f"not valid JSON ({exc})") from None
    return validate_settings(settings, path)


def validate_settings(settings: Any, path: Path) -> dict[str, Any]:
    """The checks :func:`read_settings` makes on parsed ``lake.json`` content (also before a write)."""
    if not isinstance(settings, dict):
        raise LakeDamaged(path, "not a JSON object of settings")
    engine = settings.get("index", "faiss")
    if not isinstance(engine, str) or not (engine == "faiss" or engine.startswith(MILVUS_PREFIXES)
                                           or engine.endswith(".db")):
        raise LakeDamaged(path, f"'index' is {engine!r}: use \"faiss\" or a Milvus URI "
                                "(milvus://HOST:PORT, milvus-lite:/path/file.db, http(s)://HOST:PORT)")
    return settings


def open_catalog(url: str, sqlite_file: Path, read_only: bool) -> Any:
    """The catalog engine with its schema; a damaged catalog is a one-line :class:`LakeDamaged`.

    A lake folder that this process cannot write is opened read-only (SQLite ``mode=ro``, or
    ``immutable`` when even the WAL side files cannot be created), so ``info``, ``images list`` and
    ``identify`` work on a read-only copy.
    """
    from sqlalchemy.exc import DatabaseError, OperationalError

    candidates = [url]
    if read_only and url == sqlite_url(sqlite_file):
        if not sqlite_file.exists():
            raise LakeDamaged(sqlite_file, "missing")
        base = f"sqlite:///file:{sqlite_file.resolve()}"
        candidates = [f"{base}?mode=ro&uri=true", f"{base}?immutable=1&uri=true"]
    last: Exception | None = None
    for candidate in candidates:
        engine = create_catalog_engine(candidate)
        try:
            if read_only:  # no schema changes on a read-only lake: one query proves it opens
                probe = "SELECT count(*) FROM sqlite_master" if candidate.startswith("sqlite") else "SELECT 1"
                with engine.connect() as conn:
                    conn.exec_driver_sql(probe).all()
            else:
                ensure_schema(engine)
            return engine
        except (DatabaseError, OperationalError) as exc:
            engine.dispose()
            last = exc
    assert last is not None
    where = sqlite_file if url.startswith("sqlite") else _redact(url)
    detail = str(getattr(last, "orig", last)).splitlines()[0][:160]
    raise LakeDamaged(where, f"the catalog cannot be opened ({detail})")


def _dir_bytes(path: Path) -> int:
    total = 0
    if not path.exists():
        return 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def check_meta_key(key: Any) -> None:
    """A metadata field name usable in a filter: text without control characters, quotes or backslashes.

    The key becomes part of a JSON path in SQL (``$."key"``); a NUL byte or a quote there is an SQL
    error, which would surface as a crash instead of a clear "bad input".
    """
    if not isinstance(key, str) or not key or len(key) > 200:
        raise BadInput(f"a metadata filter field must be a name of 1 to 200 characters, not {key!r}")
    if any(ord(ch) < 32 or ch in '"\\' for ch in key):
        raise BadInput(f"a metadata filter field may not contain control characters, quotes or backslashes: {key!r}")
