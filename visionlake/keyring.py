"""The lake key: never silently replaced, checked against the lake, rotated by a command.

A lake that holds ciphertext (face templates, encrypted index files) must be opened with the key it
was written with. Creating a fresh key when ``keys/lake.key`` is missing would write new templates
under a throwaway key and leave every older one unreadable even after the original key is restored,
so :func:`open_cipher` creates a key only for a lake without encrypted data, and otherwise refuses
with one line naming the file to restore.

A fingerprint of the key (a domain-separated SHA-256, not usable to recover the key) is recorded in
the catalog (table ``lake_secrets``), so a *wrong* key -- another lake's, an old backup's -- is
refused just as clearly, before anything is decrypted or written with it. Lakes written before the
fingerprint existed record it the first time a key proves able to decrypt one of their templates.

Rotation (:func:`rotate_lake_key`, ``visionlake keys rotate-lake-key``) is crash-safe: the new key
is written to ``keys/lake.key.new`` first, every template and every encrypted index file is then
re-encrypted one at a time (each step tries the new key first, so a rerun skips finished work), the
new fingerprint is committed, and only then ``lake.key.new`` replaces ``lake.key``. Until that rename
the old key stays in ``lake.key``; while ``lake.key.new`` exists every other command refuses with
"rotation interrupted: rerun the command", and the rerun completes it.

The same table holds the audit log's MAC key, sealed with the lake key (rotation re-seals it; the
MAC key itself never changes, so the audit chain stays verifiable across rotations).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import LargeBinary, String, select
from sqlalchemy.orm import Mapped, mapped_column

from visionlake.catalog.models import Base
from visionlake.crypto import DecryptionError, LakeCipher
from visionlake.faults import crash_point

if TYPE_CHECKING:
    from visionlake.lake import Lake

KEY_FILE = Path("keys") / "lake.key"
NEW_KEY_FILE = Path("keys") / "lake.key.new"
_FP_NAME = "key-fingerprint"
_AUDIT_MAC = "audit-mac"
_AUDIT_AAD = b"visionlake:audit-mac:v1"
#: The associated data of each encrypted FAISS file (see :mod:`visionlake.index.faiss_index`).
_INDEX_FILES = {"index.faiss": b"faiss-index", "rerank.faiss": b"faiss-rerank", "rerank.fp16.npy": b"fp16-rows"}


class KeyProblem(DecryptionError):
    """The lake key is missing, wrong, or a rotation is unfinished (exit code 6)."""

    code = "key_unavailable"
    exit_code = 6


class LakeSecret(Base):
    """Small named values about the lake's keys: the key fingerprint, the sealed audit MAC key."""

    __tablename__ = "lake_secrets"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


def fingerprint(key: bytes) -> str:
    """A public name for a key (hex): equal keys, equal fingerprints; reveals nothing usable."""
    return hashlib.sha256(b"visionlake-lake-key-fingerprint:v1\0" + key).hexdigest()[:32]


def _decode_key(raw: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError as exc:
        raise KeyProblem(f"{where} is not a base64 key: restore the lake's key file from your backup") from exc
    if len(key) != 32:
        raise KeyProblem(f"{where} does not hold a 32-byte key: restore the lake's key file from your backup")
    return key


def load_key(root: Path) -> tuple[bytes, str] | None:
    """(key, where it came from) from ``VISIONLAKE_KEY`` or ``keys/lake.key``; None when neither exists."""
    env = os.environ.get("VISIONLAKE_KEY")
    if env:
        return _decode_key(env.encode(), "VISIONLAKE_KEY"), "VISIONLAKE_KEY"
    path = root / KEY_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return _decode_key(raw, str(path)), str(path)


def _write_key_file(path: Path, key: bytes) -> None:
    """A new key file, 0600 in a 0700 folder, flushed to disk before anything is encrypted with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(key))
        fh.flush()
        os.fsync(fh.fileno())
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------------------------- catalog
def _get(lake: Lake, name: str) -> bytes | None:
    with lake.engine.connect() as conn:
        return conn.execute(select(LakeSecret.value).where(LakeSecret.name == name)).scalar()


def _put(lake: Lake, name: str, value: bytes) -> None:
    with lake.session() as s:
        row = s.get(LakeSecret, name)
        if row is None:
            s.add(LakeSecret(name=name, value=value))
        else:
            row.value = value


def _first_template(lake: Lake) -> tuple[bytes, bytes] | None:
    """One encrypted value of the lake and its associated data (columns from :mod:`visionlake.areas`)."""
    from visionlake.areas import sealed_columns

    with lake.engine.connect() as conn:
        for model, sealed in sealed_columns():
            col = getattr(model, sealed.column)
            blob = conn.execute(select(col).where(col.is_not(None)).limit(1)).scalar()
            if blob is not None:
                return blob, sealed.associated
    return None


def _encrypted_index_dirs(root: Path) -> list[Path]:
    out = []
    for header in sorted((root / "collections").glob("*/index/*/index.json")):
        try:
            if json.loads(header.read_text()).get("encrypted"):
                out.append(header.parent)
        except (OSError, ValueError):
            out.append(header.parent)  # unreadable header: assume the worst, never create a key
    return out


def holds_ciphertext(lake: Lake) -> bool:
    """Whether the lake holds anything encrypted with its key (templates, index files, a fingerprint)."""
    return (_get(lake, _FP_NAME) is not None or _first_template(lake) is not None
            or bool(_encrypted_index_dirs(lake.root)))


# ---------------------------------------------------------------------------------------------- lakes
_LAKES: dict[int, weakref.ref[Any]] = {}


def register(lake: Lake) -> None:
    """Remember which lake an engine belongs to, so code holding only a session (the audit log) can
    reach the lake's keys."""
    _LAKES[id(lake.engine)] = weakref.ref(lake)


def lake_of(engine: Any) -> Any:
    """The open :class:`~visionlake.lake.Lake` of a catalog engine."""
    ref = _LAKES.get(id(engine))
    lake = ref() if ref is not None else None
    if lake is None or lake.engine is not engine:
        raise RuntimeError("this catalog engine belongs to no open Lake (open the lake with visionlake.lake.Lake)")
    return lake


# ---------------------------------------------------------------------------------------------- open
def _restore_hint(root: Path) -> str:
    return (f"restore {root / KEY_FILE} (mode 0600) from your backup, or set VISIONLAKE_KEY to the "
            "base64 key")


def open_cipher(lake: Lake) -> LakeCipher:
    """The lake's cipher, after checking the key against the lake (see the module docstring)."""
    root = lake.root
    if (root / NEW_KEY_FILE).exists():
        raise KeyProblem(f"a key rotation of {root} was interrupted: run 'visionlake keys rotate-lake-key' "
                         f"to finish it ({root / KEY_FILE} still holds the old key)")
    loaded = load_key(root)
    recorded = _get(lake, _FP_NAME)
    if loaded is None:
        if recorded is not None or holds_ciphertext(lake):
            raise KeyProblem(f"this lake holds encrypted face data but its key is missing: {_restore_hint(root)}; "
                             "a new key would make every stored face unreadable, so none is created")
        key = os.urandom(32)
        _write_key_file(root / KEY_FILE, key)
        loaded = (key, str(root / KEY_FILE))
    key, where = loaded
    fp = fingerprint(key)
    if recorded is not None and recorded.decode() != fp:
        raise KeyProblem(f"wrong key: the key from {where} (fingerprint {fp[:12]}) is not the key this lake "
                         f"was encrypted with (fingerprint {recorded.decode()[:12]}): {_restore_hint(root)}")
    cipher = LakeCipher(key)
    if recorded is None:
        first = _first_template(lake)
        if first is not None:
            try:
                cipher.decrypt(first[0], associated=first[1])
            except DecryptionError as exc:
                raise KeyProblem(f"wrong key: the key from {where} cannot decrypt this lake's face templates: "
                                 f"{_restore_hint(root)}") from exc
        _put_if_free(lake, _FP_NAME, fp.encode())
    return cipher


def _put_if_free(lake: Lake, name: str, value: bytes) -> None:
    """Record a value unless the catalog is busy or read-only right now (then the next open records it).

    The cipher is often first needed inside a write transaction of this very process (enrollment
    seals templates after it has written the person), which holds SQLite's write lock: waiting for
    it here would wait for ourselves, so this tries once, briefly.
    """
    from sqlalchemy import insert
    from sqlalchemy.exc import DBAPIError

    try:
        with lake.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout=100")
                conn.commit()
            try:
                if conn.execute(select(LakeSecret.name).where(LakeSecret.name == name)).first() is None:
                    conn.execute(insert(LakeSecret).values(name=name, value=value))
                conn.commit()
            finally:
                conn.rollback()
                if sqlite:
                    conn.exec_driver_sql("PRAGMA busy_timeout=60000")
                    conn.commit()
    except DBAPIError:
        pass


def check_key(lake: Lake) -> None:
    """Refuse early (one line, exit 6) when a lake with encrypted data has no key or the wrong one.

    For commands that may not decrypt anything themselves (listing people) but must not run on a
    lake whose key is gone; creates no key.
    """
    if (lake.root / NEW_KEY_FILE).exists() or load_key(lake.root) is not None or holds_ciphertext(lake):
        _ = lake.cipher


def audit_mac_key(lake: Lake, session: Any = None) -> bytes:
    """The audit log's HMAC key (random, created once, stored sealed with the lake key).

    ``session``: the caller's transaction, which creates the key when the lake has none yet (a
    second connection would wait on that transaction's own write lock).
    """
    cached = getattr(lake, "_audit_mac_key", None)
    if cached is not None:
        return cached
    if session is not None:
        row = session.get(LakeSecret, _AUDIT_MAC)
        if row is None:
            row = LakeSecret(name=_AUDIT_MAC, value=lake.cipher.encrypt(os.urandom(32), associated=_AUDIT_AAD))
            session.add(row)
            session.flush()
        sealed = row.value
    else:
        sealed = _get(lake, _AUDIT_MAC)
        if sealed is None:
            with lake.session() as s:
                return audit_mac_key(lake, s)
    key = lake.cipher.decrypt(sealed, associated=_AUDIT_AAD)
    lake._audit_mac_key = key
    return key


# ---------------------------------------------------------------------------------------------- rotate
def _reseal(blob: bytes, old: LakeCipher, new: LakeCipher, aad: bytes) -> bytes | None:
    """``blob`` encrypted with the new key, or None when it already is (rerun after a crash)."""
    try:
        new.decrypt(blob, associated=aad)
        return None
    except DecryptionError:
        return new.encrypt(old.decrypt(blob, associated=aad), associated=aad)


def _reencrypt_index(root: Path, folder: Path, old: LakeCipher, new: LakeCipher) -> bool:
    """Rewrite one encrypted FAISS index under the new key through the index's own load and save (so
    whatever files and manifest the index format has are written as one save); False when it already
    is under the new key. A folder that neither key opens as a whole is one whose save was killed
    between two of its files: each file is then re-sealed on its own (new key first) and reloaded."""
    from visionlake.index.faiss_index import FaissIndex
    from visionlake.lakefiles import store_bytes

    header = json.loads((folder / "index.json").read_text())
    dim, metric = int(header["dim"]), header.get("metric", "cosine")
    try:
        FaissIndex(folder, dim=dim, metric=metric, cipher=new)
        return False
    except DecryptionError:
        pass
    try:
        index = FaissIndex(folder, dim=dim, metric=metric, cipher=old)
    except DecryptionError:
        for name, file_aad in _INDEX_FILES.items():
            path = folder / name
            if path.exists():
                sealed = _reseal(path.read_bytes(), old, new, file_aad)
                if sealed is not None:
                    store_bytes(root, str(path.relative_to(root)), sealed)
        FaissIndex(folder, dim=dim, metric=metric, cipher=new)  # raises if still not readable
        return True
    index.cipher = new
    index.save()
    return True


def rotate_lake_key(lake: Lake, batch: int = 500) -> dict[str, Any]:
    """Re-encrypt everything under a new key, then retire the old one (crash-safe; rerun to resume)."""
    from sqlalchemy import update

    from visionlake.areas import sealed_columns
    from visionlake.errors import BadInput

    root = lake.root
    if os.environ.get("VISIONLAKE_KEY"):
        raise BadInput("the lake key comes from VISIONLAKE_KEY: move it into keys/lake.key (0600) and unset "
                       "VISIONLAKE_KEY to rotate, so the new key has a place to go")
    if lake.settings.get("index", "faiss") != "faiss":
        raise BadInput("key rotation re-encrypts FAISS index files; this lake uses another index engine")
    cur = load_key(root)
    if cur is None:
        raise KeyProblem(f"no lake key to rotate: {_restore_hint(root)}")
    old_key = cur[0]
    new_path = root / NEW_KEY_FILE
    resumed = new_path.exists()
    if resumed:
        new_key = _decode_key(new_path.read_bytes(), str(new_path))
    else:
        new_key = os.urandom(32)
    recorded = _get(lake, _FP_NAME)
    if recorded is not None and recorded.decode() not in (fingerprint(old_key), fingerprint(new_key)):
        raise KeyProblem(f"wrong key: {root / KEY_FILE} is not this lake's key: {_restore_hint(root)}")
    if not resumed:
        _write_key_file(new_path, new_key)
    crash_point("rotate.new_key_written")
    old, new = LakeCipher(old_key), LakeCipher(new_key)
    report = {"templates": 0, "index_files": 0, "resumed": resumed}

    for model, spec in sealed_columns():  # templates, in id order, one committed batch at a time
        key_col, col = getattr(model, spec.id_column), getattr(model, spec.column)
        last = 0
        while True:
            with lake.session() as s:
                rows = s.execute(select(key_col, col).where(key_col > last, col.is_not(None))
                                 .order_by(key_col).limit(batch)).all()
                if not rows:
                    break
                for fid, blob in rows:
                    sealed = _reseal(blob, old, new, spec.associated)
                    if sealed is not None:
                        s.execute(update(model).where(key_col == fid).values({spec.column: sealed}))
                        report["templates"] += 1
                last = rows[-1][0]
            crash_point("rotate.templates_batch")

    mac = _get(lake, _AUDIT_MAC)
    if mac is not None:
        sealed = _reseal(mac, old, new, _AUDIT_AAD)
        if sealed is not None:
            _put(lake, _AUDIT_MAC, sealed)

    for col_name, space in list(getattr(lake, "_indexes", {})):
        lake.forget_index(col_name, space)
    for folder in _encrypted_index_dirs(root):
        if _reencrypt_index(root, folder, old, new):
            report["index_files"] += 1
            crash_point("rotate.index_file")

    _put(lake, _FP_NAME, fingerprint(new_key).encode())
    crash_point("rotate.fingerprint_recorded")
    os.replace(new_path, root / KEY_FILE)  # the old key is gone only now
    lake._cipher = None
    lake._audit_mac_key = None
    report["fingerprint"] = fingerprint(new_key)[:12]
    return report


__all__ = ["KeyProblem", "LakeSecret", "audit_mac_key", "check_key", "fingerprint", "holds_ciphertext",
           "lake_of", "load_key", "open_cipher", "register", "rotate_lake_key"]
