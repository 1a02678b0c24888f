"""Catalog tables of the service: API keys, ingestion jobs and service settings.

Keys are stored only as a public lookup prefix plus a salted scrypt hash of the secret: a stolen
catalog does not hand out working keys. Jobs live in the catalog (not in memory) so that a restarted
server still shows what ran, and so that a job running in a child process can report progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from visionlake.catalog.models import Base, utcnow


class ApiKey(Base):
    """One API key: role, collection scope and the salted hash of its secret (never the secret)."""

    __tablename__ = "api_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)  # public lookup id
    salt: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)  # admin | editor | viewer
    #: Collection names this key may use; empty list = every collection.
    collections: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Requests per second allowed for this key (None = the server default).
    rate_per_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """One background ingestion job and its progress, outcome and report."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    source_kind: Mapped[str] = mapped_column(String(20), default="path")  # path | upload
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|running|succeeded|failed|cancelled
    total: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceSetting(Base):
    """Key/value settings the service persists in the lake (e.g. ``retention_days``)."""

    __tablename__ = "service_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


__all__ = ["ApiKey", "Job", "ServiceSetting"]
