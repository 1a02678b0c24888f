"""A counting analyser for ``visionlake analyse`` tests (importable as ``analyse_helpers:CountingAnalyser``).

Each persist increments ``meta["analysed"]`` of the image in the writer's transaction, so the catalog
itself shows how many times an image's results were committed. ``VL_TEST_SLEEP`` slows the worker
side down so that a test can kill a run in the middle.
"""

from __future__ import annotations

import os
import time
from typing import Any

from visionlake.analysers.base import Analyser, DecodedImage, WorkerContext
from visionlake.catalog.models import Image


class CountingAnalyser(Analyser):
    name = "counting"

    def analyse(self, images: list[DecodedImage], ctx: WorkerContext) -> list[dict[str, Any]]:
        time.sleep(float(os.environ.get("VL_TEST_SLEEP", "0")) * len(images))
        return [{"sha": im.sha256, "size": list(im.image.size)} for im in images]

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        img = session.get(Image, image_id)
        assert img.sha256 == result["sha"], "a result was persisted on the wrong image"
        meta = dict(img.meta or {})
        meta["analysed"] = int(meta.get("analysed", 0)) + 1
        img.meta = meta
