"""Work done in worker processes: read, validate, hash, decode, skip known content, analyse.

Kept free of catalog writes: workers only read the catalog (to skip analysing content that is
already stored) and return picklable outcomes; the main process is the single writer.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from visionlake.analysers import Analyser, DecodedImage, WorkerContext, build_analysers
from visionlake.analysers.base import share_cores
from visionlake.catalog.db import create_catalog_engine
from visionlake.catalog.models import Image
from visionlake.config import MAX_FILE_BYTES, MAX_IMAGE_PIXELS
from visionlake.ingest.validate import Rejected, validate


@dataclass
class WorkerConfig:
    """Everything a worker needs, picklable so that any runner (process pool, Ray) can ship it."""

    lake_root: str
    catalog_url: str
    collection: str
    collection_id: int
    purpose: str
    settings: dict[str, Any] = field(default_factory=dict)
    max_pixels: int = MAX_IMAGE_PIXELS
    max_bytes: int = MAX_FILE_BYTES
    #: worker processes of the pool this config is shipped to (0: in-process, the whole machine)
    pool_size: int = 0


@dataclass
class Outcome:
    """What happened to one source path; turned into catalog rows by the writer."""

    path: str
    meta: dict[str, Any]
    status: str  # ok | known | rejected (the file is bad) | failed (we failed: retried next run)
    reason: str | None = None
    detail: str | None = None
    sha256: str | None = None
    nbytes: int = 0
    width: int = 0
    height: int = 0
    format: str | None = None
    notes: str | None = None
    phash: int | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


class Worker:
    """One worker's state: analysers loaded once, a read-only catalog connection."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.ctx = WorkerContext(
            lake_root=Path(config.lake_root),
            collection=config.collection,
            collection_dir=Path(config.lake_root) / "collections" / config.collection,
            settings=config.settings,
        )
        self.analysers: list[Analyser] = build_analysers(config.purpose, config.settings)
        for a in self.analysers:
            a.prepare(self.ctx)
        self.engine = create_catalog_engine(config.catalog_url)

    def known_hashes(self, hashes: list[str]) -> set[str]:
        """Hashes already stored in the collection (their analysis is not repeated)."""
        if not hashes:
            return set()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Image.sha256).where(
                    Image.collection_id == self.config.collection_id, Image.sha256.in_(hashes)
                )
            )
            return {r[0] for r in rows}

    def process(self, items: list[tuple[str, dict[str, Any], tuple[str, str] | None]]) -> list[Outcome]:
        """Process a chunk of (path, meta, pre-rejection) and return one outcome per item, in order."""
        outcomes: list[Outcome] = []
        decoded: list[tuple[int, DecodedImage]] = []
        for path, meta, pre in items:
            if pre is not None:
                outcomes.append(Outcome(path, meta, "rejected", reason=pre[0], detail=pre[1]))
                continue
            try:
                d = validate(path, self.config.max_bytes, self.config.max_pixels)
            except Rejected as rej:
                if rej.reason == "unreadable" and not os.path.lexists(path):
                    # vanished since it was listed (moved, unmounted): not a bad file, retried next run
                    outcomes.append(Outcome(path, meta, "failed", reason="vanished", detail=rej.detail))
                else:
                    outcomes.append(Outcome(path, meta, "rejected", reason=rej.reason, detail=rej.detail))
                continue
            except Exception as exc:  # noqa: BLE001 - never let one file stop the run
                outcomes.append(Outcome(path, meta, "rejected", reason="corrupt", detail=repr(exc)))
                continue
            outcomes.append(
                Outcome(path, meta, "ok", sha256=d.sha256, nbytes=d.nbytes, width=d.width, height=d.height,
                        format=d.format, notes="; ".join(d.notes) or None, phash=d.phash)
            )
            decoded.append((len(outcomes) - 1, DecodedImage(path=path, sha256=d.sha256, image=d.image,
                                                           meta=meta)))
        known = self.known_hashes([img.sha256 for _, img in decoded])
        todo = []
        seen_here: set[str] = set()
        for pos, img in decoded:
            if img.sha256 in known or img.sha256 in seen_here:
                outcomes[pos].status = "known"
            else:
                seen_here.add(img.sha256)
                todo.append((pos, img))
        if todo:
            batch = [img for _, img in todo]
            for analyser in self.analysers:
                try:
                    results = analyser.analyse(batch, self.ctx)
                except Exception as exc:  # noqa: BLE001 - never let one batch stop the run
                    # The files decoded fine, so this is our failure (full disk, unwritable folder, a bug),
                    # not theirs: they stay unrecorded and the next run retries them (issue 12 item 8).
                    detail = f"analyser {analyser.name} failed: {exc!r}\n{traceback.format_exc(limit=3)}"
                    reason = "io_error" if isinstance(exc, OSError) else "analyser_error"
                    for pos, _ in todo:
                        o = outcomes[pos]
                        o.status, o.reason, o.detail = "failed", reason, detail
                    todo = []
                    break
                for (pos, _), res in zip(todo, results, strict=True):
                    outcomes[pos].results[analyser.name] = res
        return outcomes


_WORKER: Worker | None = None


_INIT_ERROR: BaseException | None = None


def init_worker(config: WorkerConfig) -> None:
    """Process-pool initializer: build the worker state once per process. A failure (e.g. a model
    that cannot be loaded) is kept and raised by the first task: a pool whose initializer raises
    respawns its workers forever, so the run would hang instead of saying why."""
    global _WORKER, _INIT_ERROR
    if config.pool_size > 0:
        share_cores(config.pool_size)
    try:
        _WORKER = Worker(config)
    except Exception as exc:  # noqa: BLE001 - re-raised in the parent through the task
        _INIT_ERROR = exc


def process_chunk(items: list[tuple[str, dict[str, Any], tuple[str, str] | None]]) -> list[Outcome]:
    """Process-pool task."""
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    assert _WORKER is not None, "init_worker was not called"
    return _WORKER.process(items)
