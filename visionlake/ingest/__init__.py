"""Crash-safe, resumable, parallel ingestion of photo collections into a lake."""

from visionlake.ingest.pipeline import ingest
from visionlake.ingest.validate import REASONS, Rejected, decode, read_bytes

__all__ = ["REASONS", "Rejected", "decode", "ingest", "read_bytes"]
