"""Catalog tables of the face side: faces, people, unknown-person groups and the audit log.

Face templates are biometric data: the ``embedding`` column only ever holds AES-GCM ciphertext made
with :attr:`visionlake.lake.Lake.cipher`, never plaintext floats. The catalog is the source of truth;
the vector index is a derived, rebuildable copy (see :mod:`visionlake.faces.sync`).

``sqlite_autoincrement`` keeps SQLite from handing a forgotten person's (or face's) id to a new row,
so that an id in an old log line or an index file can never silently point at someone else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from visionlake.catalog.models import Base, utcnow


class Person(Base):
    """One enrolled identity of a collection (several faces may point here)."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("collection_id", "name", name="uq_person_name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    consent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaceGroup(Base):
    """A group of faces believed to be one person who is not enrolled (clustering output)."""

    __tablename__ = "face_groups"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Face(Base):
    """One detected face: where it is, how good it is, its encrypted template and who it is."""

    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_collection_person", "collection_id", "person_id"),
        Index("ix_faces_collection_group", "collection_id", "group_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    box: Mapped[list[int]] = mapped_column(JSON, nullable=False)  # left, top, right, bottom
    landmarks: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    quality: Mapped[float] = mapped_column(Float, default=0.0)
    crop: Mapped[str | None] = mapped_column(Text)  # relative to the lake root
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-GCM ciphertext of float32 bytes
    pack: Mapped[str] = mapped_column(String(60), nullable=False)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("face_groups.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """Who asked the lake to identify, verify, enroll or forget, when, and which ids came back.

    Never pixels and never templates; ``result_ids`` holds typed references such as ``"person:3"`` or
    ``"face:17"`` so that erasure can scrub them. ``ids_salt``/``ids_digest``/``mac`` make the log
    tamper-evident (see :mod:`visionlake.faces.audit_chain`); ids come from :class:`AuditHead`, so a
    deleted row's id is never handed out again.
    """

    __tablename__ = "audit_log"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False)  # identify | verify | enroll | forget
    collection: Mapped[str | None] = mapped_column(String(200))
    result_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detail: Mapped[str | None] = mapped_column(Text)
    ids_salt: Mapped[str | None] = mapped_column(String(32))  # hex; NULL once erasure redacted the ids
    ids_digest: Mapped[str | None] = mapped_column(String(64))  # sha256(salt || result ids), hex
    mac: Mapped[str | None] = mapped_column(String(64))  # HMAC chain value of this row, hex


class ErasureJournal(Base):
    """An erasure of a person that has started: what to remove, never who.

    Written in the same transaction that deletes the person's catalog rows, so no crash can leave
    deleted rows without a record of the files and index entries still to remove. Holds ids and
    lake-relative paths of content-addressed files only; the person is recognised by ``name_tag``,
    a keyed HMAC of the name (:meth:`visionlake.crypto.LakeCipher.fingerprint`), so that
    ``forget --person NAME`` rerun after a crash finds its own erasure. ``state`` is ``pending``
    until every removal step ran, then ``done`` until a verification by name deletes the row
    (see :mod:`visionlake.faces.erasure`).
    """

    __tablename__ = "erasure_journal"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False)
    name_tag: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    state: Mapped[str] = mapped_column(String(12), nullable=False, default="pending", index=True)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    removed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))



class AuditHead(Base):
    """The end of the audit chain (one row): the last id handed out and the MAC of that row.

    Ids are taken from ``seq`` (never from ``max(id) + 1``), so they are never reused, and a log that
    lost its last rows no longer ends where the head says.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    mac: Mapped[str | None] = mapped_column(String(64))
    chain_start: Mapped[int | None] = mapped_column(Integer)  # first chained id (older rows predate the chain)


class FaceGeneration(Base):
    """A counter per collection that every change of its faces or people increases (catalog triggers).

    Readers that cache what a collection holds (names, pack, dimension: :class:`visionlake.faces.
    identify.Gallery`) compare one integer per query instead of re-reading the collection. It is kept
    by triggers in the database itself, so every writer -- ingestion, enrollment, erasure, clustering,
    another process, raw SQL -- moves it, and none can forget to.
    """

    __tablename__ = "face_generations"

    collection_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # no FK: it outlives deletes
    n: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


#: (trigger name, table, event) kept by :func:`after_schema`; faces change identity only through these
#: columns (a group assignment does not change who a gallery can name).
_GENERATION_TRIGGERS = (
    ("vl_facegen2_faces_ins", "faces", "INSERT", "NEW"),
    ("vl_facegen2_faces_upd", "faces", "UPDATE OF person_id, embedding, pack, collection_id", "NEW"),
    ("vl_facegen2_faces_del", "faces", "DELETE", "OLD"),
    ("vl_facegen2_people_ins", "people", "INSERT", "NEW"),
    ("vl_facegen2_people_upd", "people", "UPDATE OF name, collection_id", "NEW"),
    ("vl_facegen2_people_del", "people", "DELETE", "OLD"),
)
#: Columns added to ``audit_log`` after lakes already existed (``create_all`` does not add columns).
_AUDIT_COLUMNS = (("ids_salt", "VARCHAR(32)"), ("ids_digest", "VARCHAR(64)"), ("mac", "VARCHAR(64)"))


def after_schema(engine: Any) -> None:
    """Bring an existing catalog up to this schema: audit chain columns and generation triggers.

    Reads first and writes only what is missing, so opening an up-to-date (or read-only) lake
    writes nothing.
    """
    from sqlalchemy import inspect, text

    dialect = engine.dialect.name
    have = {c["name"] for c in inspect(engine).get_columns("audit_log")}
    missing = [(n, t) for n, t in _AUDIT_COLUMNS if n not in have]
    if missing:
        with engine.begin() as conn:
            for name, sqltype in missing:
                conn.execute(text(f"ALTER TABLE audit_log ADD COLUMN {name} {sqltype}"))
    with engine.connect() as conn:
        head = conn.execute(text("SELECT count(*) FROM audit_head")).scalar()
    if not head:  # the chain starts after the rows written before it existed
        with engine.begin() as conn:
            top = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
            conn.execute(text("INSERT INTO audit_head (id, seq) SELECT 1, :top WHERE NOT EXISTS "
                              "(SELECT 1 FROM audit_head)"), {"top": int(top or 0)})
    if dialect == "sqlite":
        with engine.connect() as conn:
            present = set(conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'vl_facegen%'")).scalars())
        if present != {t[0] for t in _GENERATION_TRIGGERS}:
            with engine.begin() as conn:
                for name in present:  # an older version of the triggers
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
                for name, table, event, row in _GENERATION_TRIGGERS:
                    # no INSERT OR IGNORE: inside a foreign-key action (people delete -> faces SET NULL)
                    # SQLite applies the outer statement's ABORT policy to the trigger's INSERT
                    conn.execute(text(
                        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} FOR EACH ROW BEGIN "
                        f"INSERT INTO face_generations (collection_id, n) SELECT {row}.collection_id, 0 "
                        f"WHERE NOT EXISTS (SELECT 1 FROM face_generations WHERE collection_id = {row}.collection_id); "
                        f"UPDATE face_generations SET n = n + 1 WHERE collection_id = {row}.collection_id; END"))
    elif dialect == "postgresql":
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'vl_facegen_%'")).scalar()
        if not n:
            with engine.begin() as conn:
                conn.execute(text(
                    "CREATE OR REPLACE FUNCTION vl_facegen_bump() RETURNS trigger AS $$ "
                    "DECLARE cid integer; BEGIN "
                    "IF TG_OP = 'DELETE' THEN cid := OLD.collection_id; ELSE cid := NEW.collection_id; END IF; "
                    "INSERT INTO face_generations (collection_id, n) VALUES (cid, 1) "
                    "ON CONFLICT (collection_id) DO UPDATE SET n = face_generations.n + 1; "
                    "RETURN NULL; END $$ LANGUAGE plpgsql"))
                conn.execute(text(
                    "CREATE TRIGGER vl_facegen_faces AFTER INSERT OR DELETE OR UPDATE OF person_id, embedding, "
                    "pack, collection_id ON faces FOR EACH ROW EXECUTE FUNCTION vl_facegen_bump()"))
                conn.execute(text(
                    "CREATE TRIGGER vl_facegen_people AFTER INSERT OR DELETE OR UPDATE OF name, collection_id "
                    "ON people FOR EACH ROW EXECUTE FUNCTION vl_facegen_bump()"))
    # other databases: no triggers; readers then re-check the collection on every query


__all__ = ["AuditEntry", "AuditHead", "ErasureJournal", "Face", "FaceGeneration", "FaceGroup", "Person", "after_schema"]
