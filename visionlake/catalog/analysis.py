"""Catalog tables of re-analysis runs (``visionlake analyse``): which images a run has finished.

A run is resumable like ingestion: each chunk's analyser results and its :class:`AnalysisDone` rows
commit in one transaction, so after ``kill -9`` the next ``analyse`` of the same collection and
analysers continues the unfinished run and skips exactly the images already committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from visionlake.catalog.models import Base, utcnow


class AnalysisRun(Base):
    """One ``analyse`` invocation over a collection (possibly resumed several times)."""

    __tablename__ = "analysis_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    analysers: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    purpose: Mapped[str] = mapped_column(String(40), default="analyse")  # analyse | switch-pack
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AnalysisDone(Base):
    """An image a run has finished: ``ok``, ``missing`` (no readable source file) or ``error``."""

    __tablename__ = "analysis_done"
    __table_args__ = (UniqueConstraint("run_id", "image_id", name="uq_analysis_done"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)


__all__ = ["AnalysisDone", "AnalysisRun"]
