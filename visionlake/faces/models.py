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
    ``"face:17"`` so that erasure can scrub them.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False)  # identify | verify | enroll | forget
    collection: Mapped[str | None] = mapped_column(String(200))
    result_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detail: Mapped[str | None] = mapped_column(Text)


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


__all__ = ["AuditEntry", "ErasureJournal", "Face", "FaceGroup", "Person"]
