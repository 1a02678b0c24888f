"""The one small interface every analyser implements.

Ingestion decodes images in worker processes and hands them to the collection's analysers in
batches (``analyse``, runs in the worker, must return picklable results); the main process then
writes each image and its results in one transaction (``persist``) so that a crash never leaves an
image half-analysed, and calls ``finalize`` at the end of a run (save indexes, for example).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image as PILImage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from visionlake.catalog.models import Collection
    from visionlake.lake import Lake


#: Environment variable naming how many worker processes share this machine's cores; models size their
#: thread pools by it (``visionlake.fashion.analyser._worker_threads``: cores // workers).
WORKERS_ENV = "VISIONLAKE_WORKERS"


def share_cores(workers: int) -> None:
    """Called in each pool worker process (never in the parent): tell this process's models that
    ``workers`` processes share the cores.

    Why: without it every worker sized its ONNX Runtime pool to all cores, so two ingest workers on
    2 cores ran 4 compute threads that preempted each other and the other worker's colour analysis
    (measured: see README "Ingestion"). A value the user exported wins. Embeddings do not depend on
    the thread count (checked bit for bit in ``tests/ingest/test_worker_threads.py``).
    """
    os.environ.setdefault(WORKERS_ENV, str(max(1, int(workers))))


@dataclass
class DecodedImage:
    """A validated, decoded RGB image and what ingestion knows of it."""

    path: str
    sha256: str
    image: PILImage.Image  # RGB, EXIF orientation applied, first frame of animations
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkerContext:
    """What an analyser may use inside a worker: where derived files go."""

    lake_root: Path
    collection: str
    collection_dir: Path  # <lake>/collections/<name>
    settings: dict[str, Any] = field(default_factory=dict)


class Analyser(ABC):
    """Turns decoded images into per-image results (and optional vectors)."""

    #: Short unique name, used in settings and reports.
    name: str = "analyser"

    def prepare(self, ctx: WorkerContext) -> None:
        """Load models once per worker process (called before the first ``analyse``)."""

    @abstractmethod
    def analyse(self, images: list[DecodedImage], ctx: WorkerContext) -> list[dict[str, Any]]:
        """One picklable result dict per input image, in order (runs in a worker process)."""

    def persist(
        self,
        lake: Lake,
        session: Session,
        collection: Collection,
        image_id: int,
        result: dict[str, Any],
    ) -> None:
        """Write one image's result inside the caller's transaction (main process)."""

    def finalize(self, lake: Lake, collection: Collection) -> None:
        """End of a run (or a checkpoint): flush indexes and caches (main process)."""
