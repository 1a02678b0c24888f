"""Background ingestion jobs: one child process per job calling :func:`visionlake.ingest.ingest`.

Why a process and not a thread: ingestion is CPU-heavy and loads models; in a child it cannot
starve the API's event loop of the GIL, and the child may fork its own worker pool safely (forking
a multi-threaded server is not). The job row in the catalog is the channel: the child writes
``total``/``done`` as it goes and reads ``cancel_requested`` at every progress step. Cancelling is
safe because ingestion is resumable (every finished path is in the catalog); a child that ignores
the request is terminated after a grace period.

Jobs run one at a time (a queue), which is what a 2-core box can afford next to the API.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import re
import shutil
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from visionlake.errors import NotFound
from visionlake.service.models import Job

log = logging.getLogger("visionlake.service.jobs")

#: Seconds between progress writes to the catalog (and cancel checks) in the child.
PROGRESS_EVERY_S = 0.3
#: Seconds a child gets to stop by itself after a cancel request before it is terminated.
CANCEL_GRACE_S = 10.0
FINAL = ("succeeded", "failed", "cancelled")


class JobCancelled(Exception):
    """Raised inside the child's progress callback to stop ingestion."""


_ABS_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:,;()\[\]]+){2,}[\\/]?")
_SQL = re.compile(r"\s*[\[(]?(?:SQL:|\(Background on this error|\(sqlite3\.|\(psycopg).*", re.S)


def public_error(message: str | None) -> str | None:
    """A job error fit for API clients: no server paths (only the file's name stays), no SQL text.

    Messages come from exceptions deep in ingestion; they can name the lake folder, upload folders or
    carry SQLAlchemy's ``[SQL: ...]`` dump. The full text goes to the server log instead.
    """
    if not message:
        return message
    text = _SQL.sub(" (database error; see the server log)", message)
    text = _ABS_PATH.sub(lambda m: "…/" + re.split(r"[\\/]", m.group(0).rstrip("/\\"))[-1], text)
    return text.strip()[:500]


def job_info(row: Job) -> dict[str, Any]:
    """The API view of a job (the report only once it exists)."""
    return {
        "id": row.id, "collection": row.collection, "source_kind": row.source_kind,
        "source": row.source if row.source_kind == "path" else None,
        "status": row.status, "total": row.total, "done": row.done or 0,
        "progress": (round(min(1.0, (row.done or 0) / row.total), 4) if row.total else None),
        "cancel_requested": bool(row.cancel_requested), "error": public_error(row.error), "created_by": row.created_by,
        "created_at": _iso(row.created_at), "started_at": _iso(row.started_at), "finished_at": _iso(row.finished_at),
        "report": row.report,
    }


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _job_main(lake_root: str, job_id: int, workers: int, include: list[str], exclude: list[str]) -> None:
    """Entry point of the child process."""
    from visionlake.errors import VisionLakeError
    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    lake = Lake(lake_root)
    with lake.session() as s:
        row = s.get(Job, job_id)
        source, collection, row_kind = row.source, row.collection, row.source_kind
        row.status = "running"
        row.started_at = datetime.now(UTC)
    state = {"done": 0, "last": 0.0}

    def write(**values: Any) -> bool:
        with lake.session() as s:
            r = s.get(Job, job_id)
            for k, v in values.items():
                setattr(r, k, v)
            return bool(r.cancel_requested)

    def progress(n: int) -> None:
        from visionlake.faults import crash_point

        crash_point("service.job.chunk")  # fault-injection tests: a job process killed mid-run
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= PROGRESS_EVERY_S:
            state["last"] = now
            if write(done=state["done"]):
                raise JobCancelled()

    def on_total(total: int | None) -> None:
        if write(total=total):
            raise JobCancelled()

    # small chunks for small uploads: progress then moves file by file instead of 0 -> all at the end
    chunk = 16
    if row_kind == "upload":
        try:
            n = sum(1 for _ in Path(source).iterdir())
            chunk = max(1, min(16, n // (4 * max(1, workers))))
        except OSError:
            pass
    try:
        report = ingest(lake, source, collection, workers=workers, include=include, exclude=exclude,
                        progress=progress, on_total=on_total, chunk_size=chunk)
        write(status="succeeded", done=state["done"], report=_jsonable(report), finished_at=datetime.now(UTC))
    except JobCancelled:
        write(status="cancelled", done=state["done"], finished_at=datetime.now(UTC),
              error="cancelled on request; already ingested files stay, a new job resumes the rest")
    except VisionLakeError as exc:
        write(status="failed", error=public_error(exc.message), finished_at=datetime.now(UTC))
    except Exception as exc:  # noqa: BLE001 - the job records the failure; the server keeps running
        traceback.print_exc()  # the details (paths, SQL) go to the server log only
        write(status="failed", error=f"ingestion failed with an internal error ({type(exc).__name__}); "
                                     "the server log has the details", finished_at=datetime.now(UTC))
    finally:
        lake.close()


def _jsonable(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


class JobRunner:
    """Queue of ingestion jobs run one at a time in child processes."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.lake = state.lake
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._options: dict[int, tuple[list[str], list[str]]] = {}
        self._recover()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="visionlake-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=CANCEL_GRACE_S + 5)
            self._thread = None

    def _recover(self) -> None:
        """Jobs a previous server left running died with it: mark them failed (they can be resubmitted)."""
        with self.lake.session() as s:
            for row in s.scalars(select(Job).where(Job.status == "running")):
                row.status = "failed"
                row.error = "the server stopped while this job ran; submit it again to resume"
                row.finished_at = datetime.now(UTC)

    # ------------------------------------------------------------------ API
    def submit(self, collection: str, source: str, source_kind: str, created_by: str,
               include: list[str] | None = None, exclude: list[str] | None = None) -> dict[str, Any]:
        with self.lake.session() as s:
            row = Job(collection=collection, source=source, source_kind=source_kind, created_by=created_by)
            s.add(row)
            s.flush()
            self._options[row.id] = (list(include or []), list(exclude or []))
            out = job_info(row)
        self._wake.set()
        return out

    def get(self, collection: str, job_id: int) -> dict[str, Any]:
        with self.lake.session() as s:
            row = s.get(Job, job_id)
            if row is None or row.collection != collection:
                raise NotFound(f"no job {job_id} in collection {collection!r}")
            return job_info(row)

    def list(self, collection: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.lake.session() as s:
            rows = s.scalars(select(Job).where(Job.collection == collection).order_by(Job.id.desc()).limit(limit))
            return [job_info(r) for r in rows]

    def cancel(self, collection: str, job_id: int) -> dict[str, Any]:
        with self.lake.session() as s:
            row = s.get(Job, job_id)
            if row is None or row.collection != collection:
                raise NotFound(f"no job {job_id} in collection {collection!r}")
            if row.status == "queued":
                row.status = "cancelled"
                row.finished_at = datetime.now(UTC)
                row.error = "cancelled before it started"
            elif row.status == "running":
                row.cancel_requested = True
            return job_info(row)

    # ------------------------------------------------------------------ worker loop
    def _next(self) -> int | None:
        with self.lake.session() as s:
            return s.scalar(select(Job.id).where(Job.status == "queued").order_by(Job.id).limit(1))

    def _loop(self) -> None:
        while not self._stop.is_set():
            job_id = self._next()
            if job_id is None:
                self._wake.wait(timeout=2.0)
                self._wake.clear()
                continue
            try:
                self._run(job_id)
            except Exception:  # noqa: BLE001 - never let the queue thread die
                log.exception("job %s could not be run", job_id)
                self._finish_if_open(job_id, "failed", "the job could not be started (see the server log)")

    def _run(self, job_id: int) -> None:
        include, exclude = self._options.pop(job_id, ([], []))
        with self.lake.session() as s:
            row = s.get(Job, job_id)
            collection, kind, source = row.collection, row.source_kind, row.source
        ctx = mp.get_context("spawn")
        proc = ctx.Process(target=_job_main, name=f"visionlake-job-{job_id}",
                           args=(str(self.lake.root), job_id, self.state.job_workers, include, exclude))
        proc.start()
        cancel_seen: float | None = None
        while proc.is_alive():
            proc.join(timeout=0.25)
            if self._stop.is_set() and cancel_seen is None:
                self._request_cancel(job_id)
                cancel_seen = time.monotonic()
            if cancel_seen is None and self._cancel_requested(job_id):
                cancel_seen = time.monotonic()
            if cancel_seen is not None and time.monotonic() - cancel_seen > CANCEL_GRACE_S and proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
                self._finish_if_open(job_id, "cancelled", "cancelled on request (the ingestion was stopped)")
        self._finish_if_open(job_id, "failed", f"the ingestion process ended unexpectedly (exit code {proc.exitcode})")
        self.state.drop_cached_indexes(collection)
        if kind == "upload" and self._status(job_id) == "failed" and not self._has_rows(source):
            shutil.rmtree(Path(source), ignore_errors=True)  # nothing points at these uploads

    def _status(self, job_id: int) -> str:
        with self.lake.session() as s:
            return s.get(Job, job_id).status

    def _has_rows(self, source: str) -> bool:
        """Whether any catalog path lies in ``source`` (uploaded originals that images point at stay)."""
        from visionlake.catalog.models import SourcePath

        with self.lake.session() as s:
            return s.scalar(select(SourcePath.id).where(SourcePath.path.like(f"{source}%")).limit(1)) is not None

    def _cancel_requested(self, job_id: int) -> bool:
        with self.lake.session() as s:
            return bool(s.get(Job, job_id).cancel_requested)

    def _request_cancel(self, job_id: int) -> None:
        with self.lake.session() as s:
            s.get(Job, job_id).cancel_requested = True

    def _finish_if_open(self, job_id: int, status: str, error: str) -> None:
        with self.lake.session() as s:
            row = s.get(Job, job_id)
            if row is not None and row.status not in FINAL:
                row.status = status
                row.error = error
                row.finished_at = datetime.now(UTC)
