"""Core catalog tables shared by every collection purpose.

Faces, fashion and the service add their own tables in their own modules (importing :class:`Base`)
and list those modules in :data:`visionlake.catalog.db.MODEL_MODULES`, so that one ``create_all``
builds the whole schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from visionlake.catalog.paths import FsPath


def utcnow() -> datetime:
    """Timestamps are stored in UTC so that lakes moved between machines stay consistent."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base for every visionlake table."""


class Collection(Base):
    """A named set of images inside a lake; ``purpose`` decides which analysers run."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    purpose: Mapped[str] = mapped_column(String(20), nullable=False, default="plain")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Image(Base):
    """One unique image (by content hash) in a collection. Duplicate paths point here."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("collection_id", "sha256", name="uq_image_hash"),
        Index("ix_images_ph0", "collection_id", "ph0"),
        Index("ix_images_ph1", "collection_id", "ph1"),
        Index("ix_images_ph2", "collection_id", "ph2"),
        Index("ix_images_ph3", "collection_id", "ph3"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    path: Mapped[str] = mapped_column(FsPath, nullable=False)  # first path seen (any bytes: see paths.py)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    format: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(String(200))  # conversions applied, e.g. "cmyk->rgb"
    phash: Mapped[int | None] = mapped_column(BigInteger)  # signed 64-bit perceptual hash
    ph0: Mapped[int | None] = mapped_column(Integer)  # four 16-bit bands of phash for near-dup lookup
    ph1: Mapped[int | None] = mapped_column(Integer)
    ph2: Mapped[int | None] = mapped_column(Integer)
    ph3: Mapped[int | None] = mapped_column(Integer)
    near_duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    thumbnail: Mapped[str | None] = mapped_column(Text)  # relative to the lake root
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SourcePath(Base):
    """Every path ingestion saw, with its outcome: ingested, duplicate, or rejected with a reason."""

    __tablename__ = "source_paths"
    __table_args__ = (UniqueConstraint("collection_id", "path", name="uq_source_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(FsPath, nullable=False)  # any bytes a file system allows
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # ingested | duplicate | rejected
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IngestRun(Base):
    """One invocation of ingestion; its summary is what the end-of-run report prints."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(FsPath)
    runner: Mapped[str] = mapped_column(String(20), default="local")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
