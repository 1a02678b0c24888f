"""Thumbnails: the one analyser every collection runs, so that every UI and report can show images."""

from __future__ import annotations

from typing import Any

from PIL import Image as PILImage

from visionlake.analysers.base import Analyser, DecodedImage, WorkerContext
from visionlake.config import THUMBNAIL_SIZE
from visionlake.lakefiles import store_jpeg


def thumbnail_relpath(collection: str, sha256: str) -> str:
    """Content-addressed location: rewriting after a crash produces the same file, never a second one."""
    return f"collections/{collection}/thumbs/{sha256[:2]}/{sha256}.jpg"


class ThumbnailAnalyser(Analyser):
    """Writes a JPEG thumbnail (longest side ``THUMBNAIL_SIZE``) per image into the lake."""

    name = "thumbnail"

    def __init__(self, size: int = THUMBNAIL_SIZE, quality: int = 85) -> None:
        self.size = size
        self.quality = quality

    def analyse(self, images: list[DecodedImage], ctx: WorkerContext) -> list[dict[str, Any]]:
        out = []
        for item in images:
            rel = thumbnail_relpath(ctx.collection, item.sha256)
            if not (ctx.lake_root / rel).exists():
                thumb = item.image
                if max(thumb.size) > self.size:
                    thumb = thumb.copy()
                    thumb.thumbnail((self.size, self.size), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
                store_jpeg(ctx.lake_root, rel, thumb, quality=self.quality)
            out.append({"thumbnail": rel})
        return out

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        from visionlake.catalog.models import Image

        # through the session's object, not an UPDATE statement per image: ingestion holds the image it
        # just inserted, so this is no query, and the unit of work batches the updates at flush
        img = session.get(Image, image_id)
        if img is not None:
            img.thumbnail = result["thumbnail"]
