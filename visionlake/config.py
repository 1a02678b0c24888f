"""Where things live and which limits apply.

Every knob has one name and one environment variable so that the CLI, the service and the tests agree
on defaults without passing a settings object through every call.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Default lake folder when neither ``--lake`` nor ``VISIONLAKE_LAKE`` is given.
DEFAULT_LAKE = Path("lake")

#: Images whose header declares more pixels than this are rejected as decompression bombs.
MAX_IMAGE_PIXELS = int(os.environ.get("VISIONLAKE_MAX_PIXELS", 100_000_000))

#: Files larger than this are rejected before any decoding.
MAX_FILE_BYTES = int(os.environ.get("VISIONLAKE_MAX_FILE_BYTES", 200 * 1024 * 1024))

#: Longest side of the thumbnails written into the lake.
THUMBNAIL_SIZE = int(os.environ.get("VISIONLAKE_THUMBNAIL_SIZE", 256))

#: Extensions that a folder walk considers; everything else is counted as skipped.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
)


def shared_data_dir() -> Path:
    """The folder with the real evaluation data (LFW, product photos, StreetStyle, HERMES).

    ``VISIONLAKE_DATA`` wins; otherwise ``../shared/data`` next to the repository checkout.
    """
    env = os.environ.get("VISIONLAKE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def lake_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the lake folder: explicit argument, then ``VISIONLAKE_LAKE``, then ``./lake``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("VISIONLAKE_LAKE")
    return Path(env) if env else DEFAULT_LAKE
