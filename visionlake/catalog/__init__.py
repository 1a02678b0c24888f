"""The catalog: one relational database per lake (SQLite by default, PostgreSQL by URL)."""

from visionlake.catalog.db import create_catalog_engine, ensure_schema
from visionlake.catalog.models import Base, Collection, Image, IngestRun, SourcePath

__all__ = ["Base", "Collection", "Image", "IngestRun", "SourcePath", "create_catalog_engine", "ensure_schema"]
