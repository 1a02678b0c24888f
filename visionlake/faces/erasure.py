"""Forget a person: a journaled erasure that always completes, and its independent verification.

A person's data lives in three places that cannot share one transaction: catalog rows, the vector
index and files (crops, thumbnails, stored enrollment photos, kept probe photos). The erasure is
therefore a journal plus idempotent steps, each moment named by a crash point
(:func:`visionlake.faults.crash_point`):

1. **One catalog transaction** reads everything the person touched, writes the journal row first
   (:class:`~visionlake.faces.models.ErasureJournal`: face ids, file paths, audit entry ids; never
   the name or a template), then deletes the rows and scrubs the audit log. Both are durable
   together or not at all (``forget.before_commit``).
2. **Index**: remove the face ids and save (``forget.after_catalog`` is the moment before).
3. **Files**: unlink every listed file (``forget.after_index``, ``forget.mid_files``).
4. **Engine**: physical removal where deletes are logical: a Milvus server compacts (and is waited
   for); Milvus Lite, whose compaction keeps the bytes, is rebuilt from the catalog; FAISS removes
   ids physically and replaces its file whole (``forget.after_files``).
5. **Catalog**: SQLite ran the deletes with ``secure_delete``; the WAL is checkpointed and
   truncated so the old pages live nowhere else (``forget.after_engine``).
6. **Verify** independently of the steps above; the journal row is deleted once a verification
   that knows the name passes (``forget.before_close``).

A journal left ``pending`` by a crash is finished on the next open of the lake (:func:`finish_pending`,
called by :class:`~visionlake.lake.Lake`), and by the next ``forget`` of the same name, which then
reports ``resumed`` with the full verification instead of "no person named ...". The name is
recognised through a keyed HMAC (:meth:`~visionlake.crypto.LakeCipher.fingerprint`), so the journal
cannot be read back into a name. A finished journal whose name nobody confirmed is kept (ids and
tag only) for :data:`RECEIPT_DAYS` days, then purged.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import JSON, String, Text, delete, func, select, text

from visionlake.catalog.models import Base, Collection, Image
from visionlake.errors import BadInput, NotFound
from visionlake.faces import audit
from visionlake.faces.models import ErasureJournal, Face, FaceGroup, Person
from visionlake.faces.sync import SPACE, collection_dim, engine_index, unseal
from visionlake.faults import crash_point

if TYPE_CHECKING:
    from visionlake.lake import Lake

log = logging.getLogger(__name__)

#: Days a finished journal (ids and name tag only) waits for ``forget --person NAME`` to confirm it.
RECEIPT_DAYS = 30
#: Purpose bytes of the name tag (binds the tag to its use and to the collection).
_TAG_PURPOSE = b"visionlake:erasure-name:v1"


# ---------------------------------------------------------------------------------------------- forget
def forget(lake: Lake, collection: str = "people", person: str = "", actor: str | None = None,
           scan_files: bool = True, person_id: int | None = None) -> dict[str, Any]:
    """Erase every trace of a person (by name, or by ``person_id``), then prove it.

    Removes face rows (with their encrypted templates), their vectors, crops, thumbnails, stored
    photos and image rows of photos that were only this person's enrollment photos, probe photos
    kept by identifications that returned the person, group memberships, and the person's ids in
    the audit log (through :func:`visionlake.faces.audit.scrub`, which keeps the chain valid).
    Rerun after a crash, it finishes the interrupted erasure and verifies it (``resumed`` is then
    true). The report lists each check with ``ok``; ``ok`` at the top is true only when all passed.
    """
    col = lake.collection(collection)
    if person_id is not None:
        with lake.session() as s:
            p = s.get(Person, int(person_id))
            if p is None or p.collection_id != col.id:
                raise NotFound(f"no person with id {person_id} in collection {col.name!r}")
            person = p.name
    name = clean_name(person)
    with lake.session() as s:
        p = s.scalar(select(Person).where(Person.collection_id == col.id, Person.name == name))
        journals = 0 if p is not None else s.scalar(
            select(func.count(ErasureJournal.id)).where(ErasureJournal.collection_id == col.id))
    if p is None:
        journal_id = None
        if journals:  # the tag needs the key: computed only when there is an erasure to recognise
            tag = name_tag(lake, col.id, name)
            with lake.session() as s:
                journal_id = s.scalar(
                    select(ErasureJournal.id)
                    .where(ErasureJournal.collection_id == col.id, ErasureJournal.name_tag == tag)
                    .order_by(ErasureJournal.id.desc()).limit(1))
        if journal_id is None:
            raise NotFound(_not_found_message(lake, col, name))
        return complete(lake, journal_id, name=name, scan_files=scan_files, resumed=True)

    vectors, jid = _journal_and_delete(lake, col, p.id, name_tag(lake, col.id, name), actor)
    crash_point("forget.after_catalog")
    return complete(lake, jid, name=name, vectors=vectors, scan_files=scan_files)


def clean_name(person: str) -> str:
    """The name as stored: stripped, non-empty, at most 200 characters."""
    name = (person or "").strip()
    if not name:
        raise BadInput("a person needs a non-empty name (--person NAME)")
    if len(name) > 200:
        raise BadInput("person names are limited to 200 characters")
    return name


def name_tag(lake: Lake, collection_id: int, name: str) -> str:
    """Keyed tag of a name within a collection: recognises an erasure's name without storing it."""
    return str(lake.cipher.fingerprint(name.encode("utf-8"), _TAG_PURPOSE + b":%d" % collection_id))


def _not_found_message(lake: Lake, col: Collection, name: str) -> str:
    with lake.session() as s:
        known = s.scalars(
            select(Person.name).where(Person.collection_id == col.id).order_by(Person.name).limit(10)
        ).all()
    hint = f" (enrolled: {', '.join(known)}{', ...' if len(known) == 10 else ''})" if known else \
        " (nobody is enrolled there yet)"
    return f"no person named {name!r} in collection {col.name!r}{hint}"


def _journal_and_delete(lake: Lake, col: Collection, pid: int, tag: str, actor: str | None
                        ) -> tuple[list[np.ndarray], int]:
    """Step 1: journal what to remove and delete the catalog rows, in one transaction."""
    with lake.session() as s:
        if lake.engine.dialect.name == "sqlite":
            s.execute(text("PRAGMA secure_delete=ON"))
        frows = s.execute(select(Face.id, Face.image_id, Face.crop, Face.embedding, Face.group_id)
                          .where(Face.person_id == pid)).all()
        face_ids = sorted(int(r[0]) for r in frows)
        vectors = [unseal(lake.cipher, r[3]) for r in frows if r[3] is not None]
        image_ids = {int(r[1]) for r in frows}
        group_ids = {int(r[4]) for r in frows if r[4] is not None}
        files: set[str] = {r[2] for r in frows if r[2]}
        # images that exist only because this person was enrolled from them
        drop_images = []
        for img in s.scalars(select(Image).where(Image.id.in_(image_ids))) if image_ids else []:
            others = s.scalar(select(func.count(Face.id)).where(
                Face.image_id == img.id, Face.person_id.is_(None) | (Face.person_id != pid)))
            if (img.meta or {}).get("source") == "enroll" and not others:
                drop_images.append(img)
        for img in drop_images:
            if img.thumbnail:
                files.add(img.thumbnail)
            if (img.meta or {}).get("stored"):
                files.add(img.meta["stored"])
            files.update(c for c in s.scalars(select(Face.crop).where(Face.image_id == img.id)) if c)
        refs = {f"person:{pid}"} | {f"face:{i}" for i in face_ids}
        referring = audit.entries_referring(s, refs)
        probes = sorted({p for e in referring for p in audit.kept_probes(e)})
        files.update(probes)
        refs |= {audit.probe_ref(p) for p in probes}  # every entry naming a deleted probe is redacted
        dim = len(vectors[0]) if vectors else collection_dim(lake, col.id)

        journal = ErasureJournal(
            collection_id=col.id, person_id=pid, name_tag=tag, state="pending",
            plan={"face_ids": face_ids, "image_ids": sorted(i.id for i in drop_images),
                  "group_ids": sorted(group_ids), "files": sorted(files), "probes": probes,
                  "audit_ids": sorted(e.id for e in referring), "space": SPACE, "dim": dim},
        )
        s.add(journal)
        s.flush()  # the journal row is written before any row is deleted

        removed: dict[str, int] = {}
        removed["faces"] = s.execute(delete(Face).where(Face.person_id == pid)).rowcount or 0
        for img in drop_images:
            s.delete(img)
        removed["images"] = len(drop_images)
        removed["groups_emptied"] = 0
        for gid in group_ids:
            if not s.scalar(select(func.count(Face.id)).where(Face.group_id == gid)):
                s.execute(delete(FaceGroup).where(FaceGroup.id == gid))
                removed["groups_emptied"] += 1
        s.execute(delete(Person).where(Person.id == pid))
        removed["audit_entries_scrubbed"] = audit.scrub(s, refs)
        removed["probes"] = len(probes)
        journal.removed = removed
        audit.record(s, "forget", col.name, [],
                     detail=f"erased 1 person: {removed['faces']} face(s), {len(drop_images)} photo(s)",
                     actor=actor)
        crash_point("forget.before_commit")
        jid = journal.id
    return vectors, jid


# ---------------------------------------------------------------------------------------------- steps 2-6
def complete(lake: Lake, journal_id: int, name: str | None = None, vectors: list[np.ndarray] | None = None,
             scan_files: bool = True, resumed: bool = False) -> dict[str, Any]:
    """Run every remaining step of a journaled erasure (all idempotent), then verify.

    ``name`` is known when called by :func:`forget`; without it (lake open) the checks that need
    the name are left to the next ``forget`` of that name and the journal is kept as ``done``.
    ``vectors`` are the plaintext templates for the raw-bytes scan; on a resumed run they are
    recovered from the index while it still holds them.
    """
    with lake.session() as s:
        j = s.get(ErasureJournal, journal_id)
        if j is None:
            raise NotFound(f"erasure {journal_id} is not in the journal (finished by another process)")
        col = s.get(Collection, j.collection_id)
        plan, removed, state = dict(j.plan or {}), dict(j.removed or {}), j.state
        person_id = j.person_id
    face_ids = [int(i) for i in plan.get("face_ids", [])]
    files = list(plan.get("files", []))
    dim = plan.get("dim")
    recovered = list(vectors or [])
    engine_note: str | None = None

    if state == "pending":
        # 2. index
        n_vec = 0
        if dim is not None:
            index = engine_index(lake, col.name, int(dim))
            present = sorted(set(index.ids().tolist()) & set(face_ids))
            if vectors is None and present:
                recovered = list(np.asarray(index.reconstruct(present), dtype=np.float32))
            n_vec = index.remove(face_ids)
            index.save()
        crash_point("forget.after_index")
        # 3. files
        n_files = 0
        for rel in files:
            path = lake.root / rel
            try:
                path.unlink()
                n_files += 1
            except FileNotFoundError:
                pass
            try:  # content-addressed folders: drop them when empty
                path.parent.rmdir()
            except OSError:
                pass
            if n_files == 1:
                crash_point("forget.mid_files")
        crash_point("forget.after_files")
        # 4. engine
        engine_note = compact_engine(lake, col.name, int(dim)) if dim is not None else None
        crash_point("forget.after_engine")
        # 5. catalog
        with lake.session() as s:
            j = s.get(ErasureJournal, journal_id)
            if j is not None:
                removed["vectors"] = int(removed.get("vectors", 0)) + n_vec
                removed["files"] = int(removed.get("files", 0)) + n_files
                j.removed = removed
                j.state = "done"
                j.finished_at = datetime.now(UTC)
        flush_sqlite(lake)

    removed.setdefault("vectors", 0)
    removed.setdefault("files", 0)
    checks = [] if engine_note is None else [{"check": f"index engine: {engine_note}", "ok": True, "found": []}]
    checks += verify_erasure(lake, col, name, person_id, face_ids, recovered, files, dim, scan_files=scan_files,
                            probes=plan.get("probes", []))
    if vectors is None and face_ids:
        checks.append({"check": f"raw templates known for the byte scan: {len(recovered)} of {len(face_ids)} "
                       "(the rest were already erased from catalog and index before this run)",
                       "ok": True, "found": []})
    ok = all(c["ok"] for c in checks)
    crash_point("forget.before_close")
    if name is not None and ok:
        with lake.session() as s:
            if lake.engine.dialect.name == "sqlite":
                s.execute(text("PRAGMA secure_delete=ON"))
            s.execute(delete(ErasureJournal).where(ErasureJournal.id == journal_id))
        flush_sqlite(lake)
    return {"collection": col.name, "person": name, "removed": removed, "checks": checks, "ok": ok,
            "resumed": resumed}


def finish_pending(lake: Lake) -> list[int]:
    """Finish every erasure a crash interrupted, and purge old unconfirmed receipts (on lake open).

    Cheap when there is nothing to do (one query on an empty table). Never raises: a lake that
    cannot be written (read-only, key missing) still opens for reading, and the journal stays for
    the next writer.
    """
    try:
        with lake.session() as s:
            rows = s.execute(select(ErasureJournal.id, ErasureJournal.state, ErasureJournal.finished_at)).all()
    except Exception as exc:  # noqa: BLE001 - an open must not fail on this
        log.warning("could not read the erasure journal: %s", exc)
        return []
    finished = []
    cutoff = datetime.now(UTC) - timedelta(days=RECEIPT_DAYS)
    for jid, state, at in rows:
        try:
            if state == "pending":
                report = complete(lake, jid)
                finished.append(jid)
                if not report["ok"]:
                    log.warning("interrupted erasure %s finished but its verification failed: %s", jid,
                                [c for c in report["checks"] if not c["ok"]])
            elif at is not None and (at if at.tzinfo else at.replace(tzinfo=UTC)) < cutoff:
                with lake.session() as s:
                    s.execute(delete(ErasureJournal).where(ErasureJournal.id == jid))
        except Exception as exc:  # noqa: BLE001 - retried by the next open or forget
            log.warning("could not finish interrupted erasure %s: %s", jid, exc)
    return finished


def compact_engine(lake: Lake, collection: str, dim: int) -> str:
    """Make deletions physical in the index engine; returns what was done (for the report)."""
    engine = str(lake.settings.get("index", "faiss"))
    if engine == "faiss":
        return "faiss: ids removed from the index and the index file replaced"
    from visionlake.index.milvus_index import parse_location

    _uri, is_lite = parse_location(engine)
    index = engine_index(lake, collection, dim)
    if not is_lite:
        return f"milvus: compaction {index.compact()}"
    # Milvus Lite keeps deleted vectors in its files after compaction: rebuild from the catalog
    from visionlake.faces.sync import _add_from_catalog

    col = lake.collection(collection)
    with lake.session() as s:
        rows = s.execute(select(Face.id, Face.person_id)
                         .where(Face.collection_id == col.id, Face.embedding.is_not(None))).all()
    catalog = {int(i): p for i, p in rows}
    index.reset()
    if catalog:
        _add_from_catalog(lake, index, sorted(catalog), catalog)
    index.save()
    return f"milvus-lite: collection rebuilt from the catalog ({len(catalog)} vectors)"


def flush_sqlite(lake: Lake) -> None:
    """Move the WAL into the database file and truncate it, so deleted pages live nowhere else."""
    if lake.engine.dialect.name != "sqlite":
        return
    with lake.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


# ---------------------------------------------------------------------------------------------- verify
def verify_erasure(
    lake: Lake,
    col: Collection,
    name: str | None,
    person_id: int,
    face_ids: list[int],
    vectors: Sequence[np.ndarray],
    files: list[str],
    dim: int | None,
    scan_files: bool = True,
    probes: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Independent checks that nothing of a person is left (used by :func:`forget`, and by tests).

    Reads the catalog, the index (in memory and as saved) and the raw bytes of every file of the
    lake and of the index engine's own files (a Milvus Lite folder); ``name`` None skips the checks
    that need the name.
    """
    checks: list[dict[str, Any]] = []

    def check(what: str, found: list[Any]) -> None:
        checks.append({"check": what, "ok": not found, "found": found[:10]})

    refs = {f"person:{person_id}"} | {f"face:{i}" for i in face_ids} | {audit.probe_ref(p) for p in probes}
    with lake.session() as s:
        if name is not None:
            check("people table has no person with this name in the collection",
                  s.scalars(select(Person.id).where(Person.collection_id == col.id, Person.name == name)).all())
        check("faces table has none of the person's face ids",
              s.scalars(select(Face.id).where(Face.id.in_(face_ids))).all() if face_ids else [])
        check("no face row points at the person id",
              s.scalars(select(Face.id).where(Face.person_id == person_id)).all())
        check("audit log holds none of the person's ids nor their kept probe photos",
              [e.id for e in audit.entries_referring(s, refs)])
        if name is not None:
            check("no text column of any catalog table contains the name", _tables_containing(s, name))
    if dim is not None:
        index = engine_index(lake, col.name, int(dim))
        present = sorted(set(index.ids().tolist()) & set(face_ids))
        check("vector index (in memory) holds none of the face ids", present)
        if str(lake.settings.get("index", "faiss")) == "faiss":
            header = lake.collection_dir(col.name) / "index" / SPACE / "index.json"
            on_disk: list[Any] = []
            if header.exists():
                h = json.loads(header.read_text())
                meta = h.get("metadata", {})
                fids = set(face_ids)
                on_disk = [k for k, v in meta.items()
                           if int(k) in fids or (isinstance(v, dict) and v.get("person_id") == person_id)]
                on_disk += sorted(reload_index_ids(lake, col.name, int(dim)) & fids)
            check("saved vector index holds none of the face ids or the person id", on_disk)
    check("crops, thumbnails, stored photos and kept probe photos are deleted",
          [f for f in files if (lake.root / f).exists()])
    if scan_files:
        patterns: dict[str, bytes | re.Pattern[bytes]] = {}
        if name is not None:
            patterns["name"] = name_pattern(name)
        for i, v in enumerate(vectors):
            patterns[f"template {i} (float32)"] = np.asarray(v, dtype=np.float32).tobytes()
            patterns[f"template {i} (float64)"] = np.asarray(v, dtype=np.float64).tobytes()
        roots = [lake.root, *engine_paths(lake)]
        hits, scanned = scan_files_for(roots, patterns)
        where = "the lake" + (" and the index engine's files" if len(roots) > 1 else "")
        check(f"no file in {where} contains the name or a raw template ({scanned} files scanned, "
              f"{len(vectors)} templates)", hits)
    if str(lake.settings.get("index", "faiss")) not in ("faiss",) and not engine_paths(lake):
        checks.append({"check": "index engine files are on a Milvus server: not scanned from here "
                       "(compaction was requested and waited for)", "ok": True, "found": []})
    return checks


def engine_paths(lake: Lake) -> list[Path]:
    """Local files of the index engine outside the lake folder (a Milvus Lite database)."""
    engine = str(lake.settings.get("index", "faiss"))
    if engine == "faiss":
        return []
    from visionlake.index.milvus_index import parse_location

    uri, is_lite = parse_location(engine)
    path = Path(uri)
    if not is_lite or not path.exists():
        return []
    try:
        path.relative_to(lake.root)
        return []  # already under the lake folder
    except ValueError:
        return [path]


def reload_index_ids(lake: Lake, collection: str, dim: int) -> set[int]:
    """Ids in the FAISS index file as saved (loaded fresh, not the cached in-memory object)."""
    from visionlake.index.faiss_index import FaissIndex

    path = lake.collection_dir(collection) / "index" / SPACE
    if not (path / "index.json").exists():
        return set()
    return set(FaissIndex(path, dim=dim, metric="cosine", cipher=lake.cipher).ids().tolist())


def _tables_containing(s: Any, needle: str) -> list[str]:
    """``table.column`` for every text/JSON column of every table holding ``needle`` as a whole word."""
    found = []
    word = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(needle) + r"(?![A-Za-z0-9_])")
    for table in Base.metadata.sorted_tables:
        for c in table.columns:
            if not isinstance(c.type, String | Text | JSON):
                continue
            target = c if not isinstance(c.type, JSON) else c.cast(Text)
            values = s.scalars(select(target).where(target.like(f"%{needle}%")).limit(1000)).all()
            n = sum(1 for v in values if v is not None and word.search(str(v)))
            if n:
                found.append(f"{table.name}.{c.name} ({n} rows)")
    return found


def name_pattern(name: str) -> re.Pattern[bytes]:
    """The name as a whole word (so forgetting "Ann" is not failed by an enrolled "Anna")."""
    return re.compile(rb"(?<![A-Za-z0-9_])" + re.escape(name.encode("utf-8")) + rb"(?![A-Za-z0-9_])")


def scan_files_for(roots: Sequence[Path], patterns: dict[str, bytes | re.Pattern[bytes]],
                   skip: Sequence[str] = ("keys",)) -> tuple[list[str], int]:
    """Search the raw bytes of every file under each root; returns hits and the number of files read.

    Runs :mod:`visionlake.faces.erasure_scan` in a child process (see there why: reading the live
    SQLite catalog's bytes in this process would drop this process's locks on it). Hits under the
    first root are relative to it. A scan that cannot run is reported as a hit, never as a pass.
    """
    from visionlake.faces import erasure_scan

    job = json.dumps({"roots": [str(r) for r in roots], "patterns": erasure_scan.encode_patterns(patterns),
                      "skip": list(skip)})
    proc = subprocess.run([sys.executable, "-I", "-S", erasure_scan.__file__], input=job, capture_output=True,
                          text=True, timeout=3600)
    if proc.returncode != 0:
        return [f"(the file scan could not run: {proc.stderr.strip().splitlines()[-1:] or proc.returncode})"], 0
    out = json.loads(proc.stdout)
    return list(out["hits"]), int(out["scanned"])


def scan_lake_files(root: Path, patterns: dict[str, bytes | re.Pattern[bytes]],
                    skip: Sequence[str] = ("keys",)) -> tuple[list[str], int]:
    """:func:`scan_files_for` of one folder (the lake)."""
    return scan_files_for([root], patterns, skip)
