"""Catalog tables of the fashion area (created with the rest of the schema by ``ensure_schema``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from visionlake.catalog.models import Base, utcnow


class FashionTag(Base):
    """One attribute value of one image (or of its upper/lower body), with where it came from."""

    __tablename__ = "fashion_tags"
    __table_args__ = (Index("ix_fashion_tags_attr_value", "attribute", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    attribute: Mapped[str] = mapped_column(String(60), nullable=False)
    value: Mapped[str] = mapped_column(String(120), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    region: Mapped[str] = mapped_column(String(10), default="whole")  # whole | upper | lower
    source: Mapped[str] = mapped_column(String(20), default="zero-shot")  # zero-shot | head | colour


class FashionColour(Base):
    """One named colour of an image's garment and its share of the garment area."""

    __tablename__ = "fashion_colours"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    family: Mapped[str] = mapped_column(String(30), nullable=False, index=True)
    share: Mapped[float] = mapped_column(Float, default=0.0)
    hex: Mapped[str | None] = mapped_column(String(7))


class FashionHead(Base):
    """A head trained on a collection's labels: where its file is and how well it did."""

    __tablename__ = "fashion_heads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    label_column: Mapped[str] = mapped_column(String(100), nullable=False)
    model_name: Mapped[str] = mapped_column(String(200), default="")
    path: Mapped[str] = mapped_column(String(500), nullable=False)  # relative to the lake root
    classes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    cv_accuracy: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FashionEmbedding(Base):
    """An image's look embedding, kept in the catalog so that the fashion index can always be rebuilt.

    The catalog is the single source of truth for every vector index (issue 12, item 1): the FAISS or
    Milvus index is a derived copy, resynced from these rows when a crash, a cancelled job or two
    concurrent ingests left it behind. Float32 little-endian bytes (not biometric: not encrypted).
    """

    __tablename__ = "fashion_embeddings"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), default="")
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
