"""Re-analysis: run (or re-run) a collection's analysers over images already in the catalog.

It lives beside the analyser interface (a layer below the library areas) so that both ingestion's
CLI and the face area's pack switch can run it; ``visionlake.ingest.analyse`` re-exports it.

Why: a collection ingested before a model was available (fashion embeddings) or with another face
pack keeps its images; ``visionlake analyse -c C [--analyser NAME]`` reads each image again from the
source paths the catalog remembers and hands it to the analysers, with ingestion's machinery: chunks
of images go to a process pool (at most ``2 x workers`` in flight), workers read, check the content
hash and decode, analysers run in the workers, and the main process is the single writer that
commits each chunk's results and its :class:`~visionlake.catalog.analysis.AnalysisDone` rows in one
transaction. ``kill -9`` loses at most the chunks in flight; the next ``analyse`` of the same
collection and analysers resumes the unfinished run and persists every image exactly once.

Source files: the copy stored in the lake (``meta["stored"]``, enrollment ``--keep-photos``), then the
image's first path, then every other path ingestion saw for the same content. A file that is gone
or whose content changed (different SHA-256) is reported per image (``missing``) and the run goes on.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select

from visionlake.analysers import Analyser, DecodedImage, WorkerContext, build_analysers
from visionlake.analysers.base import share_cores
from visionlake.catalog.analysis import AnalysisDone, AnalysisRun
from visionlake.catalog.models import Image, SourcePath
from visionlake.config import MAX_FILE_BYTES, MAX_IMAGE_PIXELS
from visionlake.errors import BadInput
from visionlake.faults import crash_point
from visionlake.imageio import Rejected, decode_rgb, read_bytes

#: (image id, sha256, candidate source paths in order of preference)
Item = tuple[int, str, list[str]]
ProgressFn = Callable[[int], None]


@dataclass
class AnalyseOutcome:
    """What happened to one image in a worker."""

    image_id: int
    status: str  # ok | missing | error
    detail: str | None = None
    path: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class AnalyseConfig:
    """Everything a worker needs (picklable: the analysers drop their models when pickled)."""

    lake_root: str
    collection: str
    settings: dict[str, Any]
    analysers: list[Analyser]
    max_pixels: int = MAX_IMAGE_PIXELS
    max_bytes: int = MAX_FILE_BYTES
    #: worker processes of the pool (0: in-process, the whole machine)
    pool_size: int = 0


class AnalyseWorker:
    """One worker: analysers prepared once, then chunks of catalog images."""

    def __init__(self, config: AnalyseConfig) -> None:
        self.config = config
        root = Path(config.lake_root)
        self.ctx = WorkerContext(lake_root=root, collection=config.collection,
                                 collection_dir=root / "collections" / config.collection, settings=config.settings)
        self.analysers = config.analysers
        for a in self.analysers:
            a.prepare(self.ctx)

    def _read(self, sha256: str, paths: list[str]) -> tuple[DecodedImage | None, str]:
        problems = []
        for path in paths:
            try:
                data = read_bytes(path, self.config.max_bytes)
            except Rejected as rej:
                problems.append(f"{path}: {rej.reason}")
                continue
            if hashlib.sha256(data).hexdigest() != sha256:
                problems.append(f"{path}: content changed since ingestion")
                continue
            try:
                image, _fmt, _notes = decode_rgb(data, self.config.max_pixels)
            except Rejected as rej:
                problems.append(f"{path}: {rej.reason}")
                continue
            return DecodedImage(path=path, sha256=sha256, image=image), ""
        return None, "; ".join(problems) or "no source path recorded"

    def process(self, items: list[Item]) -> list[AnalyseOutcome]:
        """Read and analyse a chunk; one outcome per item, in order."""
        outcomes: list[AnalyseOutcome] = []
        decoded: list[tuple[int, DecodedImage]] = []
        for image_id, sha256, paths in items:
            img, problem = self._read(sha256, paths)
            if img is None:
                outcomes.append(AnalyseOutcome(image_id, "missing", detail=problem[:2000]))
                continue
            outcomes.append(AnalyseOutcome(image_id, "ok", path=img.path))
            decoded.append((len(outcomes) - 1, img))
        if decoded:
            batch = [img for _, img in decoded]
            for analyser in self.analysers:
                try:
                    results = analyser.analyse(batch, self.ctx)
                except Exception as exc:  # noqa: BLE001 - an analyser failure marks the batch, loudly
                    detail = f"analyser {analyser.name} failed: {exc!r}\n{traceback.format_exc(limit=3)}"
                    for pos, _ in decoded:
                        outcomes[pos].status, outcomes[pos].detail = "error", detail[:2000]
                    break
                for (pos, _), res in zip(decoded, results, strict=True):
                    outcomes[pos].results[analyser.name] = res
        return outcomes


_WORKER: AnalyseWorker | None = None


_INIT_ERROR: BaseException | None = None


def _init(config: AnalyseConfig) -> None:
    """Build the worker state; a failure is kept and raised by the first task (a pool whose
    initializer raises respawns its workers forever: the run would hang instead of saying why)."""
    global _WORKER, _INIT_ERROR
    if config.pool_size > 0:
        share_cores(config.pool_size)
    try:
        _WORKER = AnalyseWorker(config)
    except Exception as exc:  # noqa: BLE001 - re-raised in the parent through the task
        _INIT_ERROR = exc


def _process(items: list[Item]) -> list[AnalyseOutcome]:
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    assert _WORKER is not None, "_init was not called"
    return _WORKER.process(items)


class AnalyseWriter:
    """The single writer: each chunk's results and done-markers commit together."""

    def __init__(self, lake: Any, collection: Any, run_id: int, analysers: list[Analyser]) -> None:
        self.lake, self.collection, self.run_id = lake, collection, run_id
        self.analysers = {a.name: a for a in analysers}
        self.counts: dict[str, int] = {"ok": 0, "missing": 0, "error": 0}
        self.problems: list[dict[str, Any]] = []

    def write(self, outcomes: list[AnalyseOutcome]) -> None:
        with self.lake.session() as s:
            ids = [o.image_id for o in outcomes]
            done = set(s.scalars(select(AnalysisDone.image_id).where(AnalysisDone.run_id == self.run_id,
                                                                    AnalysisDone.image_id.in_(ids))))
            live = set(s.scalars(select(Image.id).where(Image.id.in_(ids))))
            for o in outcomes:
                if o.image_id in done or o.image_id not in live:  # a racing rerun, or erased meanwhile
                    continue
                if o.status == "ok":
                    for name, result in o.results.items():
                        self.analysers[name].persist(self.lake, s, self.collection, o.image_id, result)
                else:
                    if len(self.problems) < 1000:
                        self.problems.append({"image_id": o.image_id, "status": o.status,
                                              "detail": (o.detail or "")[:300]})
                s.add(AnalysisDone(run_id=self.run_id, image_id=o.image_id, status=o.status,
                                   detail=(o.detail or None) and o.detail[:2000]))
                self.counts[o.status] = self.counts.get(o.status, 0) + 1

    def finalize(self) -> None:
        for a in self.analysers.values():
            a.finalize(self.lake, self.collection)


def _paths_for(s: Any, rows: list[tuple[int, str, str, dict[str, Any] | None]], lake_root: Path) -> list[Item]:
    """Candidate source paths per image: stored copy, first path, other paths seen (duplicates)."""
    ids = [r[0] for r in rows]
    others: dict[int, list[str]] = {}
    for image_id, path in s.execute(select(SourcePath.image_id, SourcePath.path)
                                    .where(SourcePath.image_id.in_(ids)).order_by(SourcePath.id)):
        others.setdefault(int(image_id), []).append(path)
    items = []
    for image_id, sha, path, meta in rows:
        cand: list[str] = []
        stored = (meta or {}).get("stored")
        if stored:
            cand.append(str(lake_root / stored))
        cand.append(path)
        cand += others.get(int(image_id), [])
        items.append((int(image_id), sha, list(dict.fromkeys(cand))))
    return items


def _pending(lake: Any, collection_id: int, run_id: int, chunk_size: int, batch: int = 512) -> Iterator[list[Item]]:
    """Chunks of images of the collection this run has not finished, by id (keyset pages: flat memory)."""
    last = 0
    while True:
        with lake.session() as s:
            rows = s.execute(
                select(Image.id, Image.sha256, Image.path, Image.meta)
                .where(Image.collection_id == collection_id, Image.id > last,
                       ~exists().where(AnalysisDone.run_id == run_id, AnalysisDone.image_id == Image.id))
                .order_by(Image.id).limit(batch)
            ).all()
            if not rows:
                return
            last = int(rows[-1][0])
            items = _paths_for(s, [tuple(r) for r in rows], lake.root)  # type: ignore[misc]
        for i in range(0, len(items), chunk_size):
            yield items[i:i + chunk_size]


def resolve_analysers(collection: Any, names: list[str] | None) -> list[str]:
    """The analysers to run: the given names (each must exist), else the collection's own list."""
    from visionlake.analysers import PURPOSES, REGISTRY

    settings = collection.settings or {}
    own = settings.get("analysers") or PURPOSES.get(collection.purpose) or []
    if not names:
        return list(own)
    unknown = [n for n in names if n not in REGISTRY and ":" not in n]
    if unknown:
        raise BadInput(f"unknown analyser(s) {', '.join(unknown)}; choose from {', '.join(sorted(REGISTRY))}")
    return list(dict.fromkeys(names))


def _open_run(lake: Any, collection_id: int, names: list[str], purpose: str, restart: bool) -> tuple[int, bool]:
    """Resume the unfinished run for the same analysers, or start one; (run id, resumed)."""
    with lake.session() as s:
        runs = s.scalars(select(AnalysisRun).where(AnalysisRun.collection_id == collection_id,
                                                   AnalysisRun.completed.is_(False),
                                                   AnalysisRun.purpose == purpose)
                         .order_by(AnalysisRun.id.desc())).all()
        for run in runs:
            if list(run.analysers) == names:
                if not restart:
                    return run.id, True
                run.completed = True
                run.finished_at = datetime.now(UTC)
                run.stats = {**(run.stats or {}), "abandoned": True}
        run = AnalysisRun(collection_id=collection_id, analysers=names, purpose=purpose)
        s.add(run)
        s.flush()
        return run.id, False


def unfinished_run(lake: Any, collection_id: int, purpose: str = "analyse") -> int | None:
    """Id of an unfinished run of a collection (for status displays and switch-pack)."""
    with lake.session() as s:
        return s.scalar(select(AnalysisRun.id).where(AnalysisRun.collection_id == collection_id,
                                                     AnalysisRun.completed.is_(False),
                                                     AnalysisRun.purpose == purpose).limit(1))


def analyse(
    lake: Any,
    collection: str,
    analysers: list[str] | None = None,
    workers: int | None = None,
    chunk_size: int = 16,
    progress: ProgressFn | None = None,
    on_total: Callable[[int | None], None] | None = None,
    restart: bool = False,
    instances: list[Analyser] | None = None,
    purpose: str = "analyse",
) -> dict[str, Any]:
    """Run analysers over a collection's catalog images; returns the run report.

    ``workers=0`` runs in-process; ``None`` uses every core. ``instances`` (internal, e.g. the
    pack switch) gives ready analyser objects instead of names; ``purpose`` keeps such runs apart
    from user ``analyse`` runs when deciding what to resume.
    """
    import os

    col = lake.collection(collection)
    if instances is None:
        names = resolve_analysers(col, analysers)
        settings = dict(col.settings or {})
        settings["analysers"] = names
        instances = build_analysers(col.purpose, settings)
    else:
        names = [a.name for a in instances]
    if not instances:
        raise BadInput(f"collection {collection!r} has no analysers to run")
    for a in instances:  # refuse before any work: e.g. a face pack whose licence this lake has not accepted
        check = getattr(a, "check_lake", None)
        if check is not None:
            check(lake)
    t0 = time.perf_counter()
    run_id, resumed = _open_run(lake, col.id, names, purpose, restart)
    with lake.session() as s:
        total = s.scalar(select(func.count(Image.id)).where(Image.collection_id == col.id)) or 0
        already = s.scalar(select(func.count(AnalysisDone.id)).where(AnalysisDone.run_id == run_id)) or 0
    if on_total is not None:
        on_total(int(total) - int(already))
    writer = AnalyseWriter(lake, col, run_id, instances)
    config = AnalyseConfig(lake_root=str(lake.root), collection=col.name, settings=dict(col.settings or {}),
                           analysers=instances)
    chunks = _pending(lake, col.id, run_id, chunk_size)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers <= 0:
        worker = AnalyseWorker(config)
        for chunk in chunks:
            out = worker.process(chunk)
            writer.write(out)
            crash_point("analyse.chunk.committed")
            if progress:
                progress(len(out))
    else:
        sem = threading.Semaphore(2 * workers)

        def bounded() -> Iterator[list[Item]]:
            for c in chunks:
                sem.acquire()
                yield c

        config.pool_size = workers  # the workers share the cores (ONNX Runtime threads per worker)
        with mp.get_context("fork").Pool(workers, initializer=_init, initargs=(config,)) as pool:
            for out in pool.imap_unordered(_process, bounded()):
                sem.release()
                writer.write(out)
                crash_point("analyse.chunk.committed")
                if progress:
                    progress(len(out))
    writer.finalize()
    wall = time.perf_counter() - t0
    c = writer.counts
    report = {
        "collection": col.name,
        "analysers": names,
        "run_id": run_id,
        "resumed": resumed,
        "images": int(total),
        "already_done": int(already),
        "analysed": c.get("ok", 0),
        "missing": c.get("missing", 0),
        "errors": c.get("error", 0),
        "wall_s": round(wall, 3),
        "images_per_s": round(sum(c.values()) / wall, 2) if wall > 0 else 0.0,
        "workers": workers,
        "problems": writer.problems,
    }
    with lake.session() as s:
        run = s.get(AnalysisRun, run_id)
        run.completed = True
        run.finished_at = datetime.now(UTC)
        run.stats = {k: v for k, v in report.items() if k != "problems"}
    return report


__all__ = ["AnalyseOutcome", "AnalyseWorker", "analyse", "resolve_analysers", "unfinished_run"]
