"""Crash-safe, resumable, parallel ingestion of photo collections into a lake."""

from visionlake.imageio import REASONS, Rejected
from visionlake.ingest.pipeline import ingest

__all__ = ["REASONS", "Rejected", "ingest"]
