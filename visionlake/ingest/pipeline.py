"""Ingestion: stream a source, process chunks in parallel, write the catalog, report.

Stages (the same on every runner): read -> validate -> hash -> decode -> analyse -> write.
The local runner uses a process pool; ``visionlake.ingest.ray_runner`` runs the same
:class:`~visionlake.ingest.worker.Worker` on Ray. Memory stays bounded: the source is a generator,
paths already in the catalog are filtered in batches, and at most ``2 * workers`` chunks are in flight.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from visionlake.analysers import build_analysers
from visionlake.catalog.models import IngestRun, SourcePath
from visionlake.errors import BadInput
from visionlake.ingest.sources import MetaTable, SourceItem, count_source, iter_source, meta_for
from visionlake.ingest.worker import Worker, WorkerConfig, init_worker, process_chunk
from visionlake.ingest.writer import CatalogWriter

if TYPE_CHECKING:
    from visionlake.lake import Lake

Chunk = list[tuple[str, dict[str, Any], tuple[str, str] | None]]
ProgressFn = Callable[[int], None]


def _unseen(lake: Lake, collection_id: int, items: Iterator[SourceItem], table: MetaTable | None,
            counters: dict[str, int], batch: int = 512, retry_rejected: bool = False
            ) -> Iterator[tuple[str, dict[str, Any], tuple[str, str] | None]]:
    """Drop paths the catalog already holds (resume), checking in batches to keep memory flat."""
    buf: list[SourceItem] = []

    def flush() -> Iterator[tuple[str, dict[str, Any], tuple[str, str] | None]]:
        paths = [it.path for it in buf]
        with lake.session() as s:
            stmt = select(SourcePath.path).where(SourcePath.collection_id == collection_id,
                                                 SourcePath.path.in_(paths))
            if retry_rejected:
                stmt = stmt.where(SourcePath.status != "rejected")
            done = set(s.scalars(stmt))
        for it in buf:
            if it.path in done:
                counters["already_done"] += 1
            else:
                yield it.path, meta_for(it, table), it.reject
        buf.clear()

    for item in items:
        buf.append(item)
        if len(buf) >= batch:
            yield from flush()
    if buf:
        yield from flush()


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for x in it:
        chunk.append(x)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _bounded(it: Iterator[Chunk], sem: threading.Semaphore, stop: threading.Event | None = None
             ) -> Iterator[Chunk]:
    """Block the pool's feeder thread until a slot frees: bounded memory on huge sources.

    ``stop`` ends the feed: when the writer fails, the pool's exit joins the feeder thread, which
    must not stay blocked on the semaphore (that was a hang forever, issue 12 item 6).
    """
    for chunk in it:
        while not sem.acquire(timeout=0.2):
            if stop is not None and stop.is_set():
                return
        if stop is not None and stop.is_set():
            return
        yield chunk


def ingest(
    lake: Lake,
    source: str | os.PathLike[str],
    collection: str,
    meta: str | os.PathLike[str] | None = None,
    meta_key: str | None = None,
    workers: int | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    chunk_size: int = 16,
    progress: ProgressFn | None = None,
    on_total: Callable[[int | None], None] | None = None,
    runner: str = "local",
    ray_address: str | None = None,
    retry_rejected: bool = False,
) -> dict[str, Any]:
    """Ingest SOURCE into a collection and return the run report (see :func:`report_keys`).

    ``workers=0`` runs in-process (debugging, tests); ``None`` uses every core. One ingest per
    collection at a time: a second one fails at once with :class:`~visionlake.errors.Busy`.
    ``retry_rejected`` processes again the paths a previous run rejected (e.g. after fixing a cause).
    """
    from visionlake.locks import collection_write_lock

    source = str(source)
    col = lake.collection(collection)
    with collection_write_lock(lake, col.name, "ingest"):
        return _ingest_locked(lake, source, col, meta, meta_key, workers, include, exclude, chunk_size,
                              progress, on_total, runner, ray_address, retry_rejected)


def _ingest_locked(lake: Any, source: str, col: Any, meta: Any, meta_key: str | None, workers: int | None,
                   include: Iterable[str], exclude: Iterable[str], chunk_size: int, progress: ProgressFn | None,
                   on_total: Callable[[int | None], None] | None, runner: str, ray_address: str | None,
                   retry_rejected: bool) -> dict[str, Any]:
    """The run itself, once this process holds the collection's write lock."""
    from visionlake.resync import sync_collection

    sync_collection(lake, col.name)  # start from indexes that agree with the catalog (a crash before?)
    table = MetaTable(Path(meta), key=meta_key) if meta else None
    include, exclude = list(include), list(exclude)
    items = iter_source(source, include, exclude)  # validates SOURCE eagerly below
    first = next(items, None)
    if first is None:
        raise BadInput(f"source {source} holds no image files (extensions: see visionlake.config)")
    items = _prepend(first, items)
    if on_total is not None:
        on_total(count_source(source, include, exclude))
    t0 = time.perf_counter()
    with lake.session() as s:
        run = IngestRun(collection_id=col.id, source=source, runner=runner)
        s.add(run)
        s.flush()
        run_id = run.id
    config = WorkerConfig(lake_root=str(lake.root), catalog_url=lake.catalog_url, collection=col.name,
                          collection_id=col.id, purpose=col.purpose, settings=col.settings or {})
    writer = CatalogWriter(lake, col, run_id, build_analysers(col.purpose, col.settings or {}),
                           retry_rejected=retry_rejected)
    counters: dict[str, int] = {"already_done": 0}
    pending = _unseen(lake, col.id, items, table, counters, retry_rejected=retry_rejected)
    workers = os.cpu_count() or 1 if workers is None else workers

    if runner == "ray":
        from visionlake.ingest.ray_runner import run_ray

        run_ray(config, _chunks(pending, chunk_size), writer, progress, address=ray_address, workers=workers)
    elif runner != "local":
        raise BadInput(f"unknown runner {runner!r}; choose local or ray")
    elif workers <= 0:
        worker = Worker(config)
        try:
            for chunk in _chunks(pending, chunk_size):
                writer.write(worker.process(chunk))
                if progress:
                    progress(len(chunk))
        except BaseException:
            _finalize_quietly(writer)
            raise
    else:
        sem = threading.Semaphore(2 * workers)
        stop = threading.Event()
        ctx = mp.get_context("fork")
        config.pool_size = workers  # the workers share the cores (ONNX Runtime threads per worker)
        with ctx.Pool(workers, initializer=init_worker, initargs=(config,)) as pool:
            try:
                for outcomes in pool.imap_unordered(process_chunk,
                                                    _bounded(_chunks(pending, chunk_size), sem, stop)):
                    sem.release()
                    writer.write(outcomes)
                    if progress:
                        progress(len(outcomes))
            except BaseException:
                stop.set()  # unblock the feeder so that the pool can shut down (never a hang)
                pool.terminate()
                _finalize_quietly(writer)
                raise
    writer.finalize()
    wall = time.perf_counter() - t0
    c = writer.counts
    report = {
        "collection": col.name,
        "source": source,
        "seen": c["seen"] + counters["already_done"] + c["already_done"],
        "ingested": c["ingested"],
        "duplicates": c["duplicates"],
        "near_duplicates": c["near_duplicates"],
        "rejected": c["rejected"],
        "rejected_by_reason": dict(writer.rejected_by_reason),
        "already_done": counters["already_done"] + c["already_done"],
        "deferred": c["deferred"],
        "failed": c["failed"],  # we failed (disk, permissions, vanished file): not recorded, retried next run
        "failed_by_reason": dict(writer.failed_by_reason),
        "wall_s": round(wall, 3),
        "images_per_s": round(c["seen"] / wall, 1) if wall > 0 else 0.0,
        "workers": workers,
        "runner": runner,
        "rejected_files": writer.rejected_examples,
        "failed_files": writer.failed_examples,
    }
    with lake.session() as s:
        run = s.get(IngestRun, run_id)
        run.finished_at = datetime.now(UTC)
        run.completed = True
        run.stats = {k: v for k, v in report.items() if k != "rejected_files"}
    return report


def _finalize_quietly(writer: CatalogWriter) -> None:
    """On a failed or cancelled run, still save the indexes of what was committed (best effort:
    whatever is not saved is resynced from the catalog on the next open)."""
    try:
        writer.finalize()
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
