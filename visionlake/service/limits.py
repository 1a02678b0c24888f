"""Limits that keep one caller from hurting the others: body size, image pixels, rate, time.

* Request bodies above ``max_body_bytes`` (``max_upload_bytes`` for ingestion uploads) get 413 before
  the body is read (Content-Length), or as soon as a chunked body passes the limit.
* Uploaded images whose header declares more than ``max_image_pixels`` get 413 without decoding.
* Each key has a token bucket (``rate_per_s``, ``burst``): an empty bucket gets 429 with
  ``Retry-After`` (whole seconds, rounded up). Thumbnail and face-crop reads use a second, larger
  bucket per key (``asset_rate_per_s``, ``asset_burst``), so that a page showing 100 results or 100
  groups neither gets 429s for its pictures nor spends the key's API budget on them. Failed sign-ins
  are limited per client address so that guessing keys (and the scrypt cost of each guess) stays bounded.
* Blocking work runs in the thread pool under ``request_timeout_s``; a request past it gets 503 with
  code ``timeout`` (the worker thread finishes in the background, its result is dropped). The hot
  queries (identify by embedding, fashion search) run inline or on their own FIFO executor
  (:class:`QueryRunner`) under the same timeout.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visionlake.service.errors import ApiError, error_json

T = TypeVar("T")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class ServiceLimits:
    """Every limit of the service; defaults can be changed with ``VISIONLAKE_SERVICE_*`` variables."""

    max_body_bytes: int = int(_env_float("VISIONLAKE_SERVICE_MAX_BODY", 32 * 1024 * 1024))
    max_upload_bytes: int = int(_env_float("VISIONLAKE_SERVICE_MAX_UPLOAD", 1024 * 1024 * 1024))
    max_image_pixels: int = int(_env_float("VISIONLAKE_SERVICE_MAX_PIXELS", 50_000_000))
    rate_per_s: float = _env_float("VISIONLAKE_SERVICE_RATE", 20.0)
    burst: float = _env_float("VISIONLAKE_SERVICE_BURST", 40.0)
    #: thumbnails and face crops (GET): their own bucket per key, sized for a page of a few hundred
    asset_rate_per_s: float = _env_float("VISIONLAKE_SERVICE_ASSET_RATE", 200.0)
    asset_burst: float = _env_float("VISIONLAKE_SERVICE_ASSET_BURST", 600.0)
    auth_failures_per_s: float = 2.0
    auth_failure_burst: float = 20.0
    request_timeout_s: float = _env_float("VISIONLAKE_SERVICE_TIMEOUT", 120.0)
    #: uploaded / server-side trend tables: rows and cells (rows x columns) once decompressed
    max_table_rows: int = int(_env_float("VISIONLAKE_SERVICE_MAX_TABLE_ROWS", 2_000_000))
    max_table_cells: int = int(_env_float("VISIONLAKE_SERVICE_MAX_TABLE_CELLS", 40_000_000))


class RateLimiter:
    """Token buckets by name (``key:<id>``, ``ip:<addr>``); thread-safe, in memory, per process."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, name: str, rate: float, burst: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns 0 when allowed, else seconds until enough tokens exist."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(name, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= cost:
                self._buckets[name] = (tokens - cost, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle buckets rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return (cost - tokens) / rate

    def check(self, name: str, rate: float, burst: float) -> None:
        """Raise 429 with Retry-After when the bucket is empty."""
        wait = self.take(name, rate, burst)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, "rate_limited", f"too many requests; retry after {retry} s",
                           headers={"Retry-After": str(retry)})


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over the limit, checked before the app reads them."""

    def __init__(self, app: ASGIApp, limits: ServiceLimits) -> None:
        self.app = app
        self.limits = limits

    def _limit_for(self, scope: Scope) -> int:
        path = scope.get("path", "")
        if scope.get("method") == "POST" and path.rstrip("/").endswith("/jobs"):
            return self.limits.max_upload_bytes
        return self.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_json(send, 413, "body_too_large",
                                     f"request body of {declared} bytes is over the limit of {limit} bytes")
                    return
        if not any(name == b"content-length" for name, _ in scope.get("headers", [])) and \
                scope.get("method") in ("POST", "PUT", "PATCH"):
            # chunked body: read it here, up to the limit, then replay it to the app
            chunks: list[bytes] = []
            seen = 0
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    break
                seen += len(msg.get("body", b""))
                if seen > limit:
                    await _send_json(send, 413, "body_too_large", f"request body is over the limit of {limit} bytes")
                    return
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body", False):
                    break
            body = b"".join(chunks)
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    body = error_json(code, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def check_image_pixels(data: bytes, max_pixels: int) -> None:
    """413 when an uploaded image's header declares more pixels than allowed (no full decode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return  # not an image header we can read: the decoder downstream reports it as bad input
    if w * h > max_pixels:
        raise ApiError(413, "image_too_large",
                       f"image of {w}x{h} = {w * h} pixels is over the limit of {max_pixels} pixels")


def check_table_bounds(path: Any, limits: ServiceLimits) -> dict[str, int]:
    """413 before a table is parsed when it would decompress into more rows or cells than allowed.

    A Parquet file's footer declares its rows and columns, so a 132 KB file claiming 20 million rows
    (6 GB of memory and a minute of CPU once read) is refused after reading a few KB. A CSV is not
    compressed: its rows are counted as lines (a fast byte scan) and its columns from the header.
    Returns ``{"rows", "columns"}`` as declared.
    """
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(p).metadata
        except Exception as exc:  # noqa: BLE001 - any unreadable footer is bad input
            raise ApiError(400, "bad_input", f"not a readable Parquet file ({type(exc).__name__})") from None
        rows, cols = int(meta.num_rows), int(meta.num_columns)
    else:
        rows, cols = 0, 1
        with open(p, "rb") as fh:
            head = fh.readline()
            cols = max(1, head.count(b",") + 1)
            for block in iter(lambda: fh.read(1 << 20), b""):
                rows += block.count(b"\n")
    if rows > limits.max_table_rows or rows * cols > limits.max_table_cells:
        raise ApiError(413, "table_too_large",
                       f"the table has {rows:,} rows x {cols:,} columns; the limit is {limits.max_table_rows:,} rows "
                       f"and {limits.max_table_cells:,} cells (aggregate it first, or raise "
                       "VISIONLAKE_SERVICE_MAX_TABLE_ROWS / _CELLS on the server)")
    return {"rows": rows, "columns": cols}


#: A query whose recent runs took less than this (CPU) runs on the event loop instead of a thread.
#: 10 ms, not 3: a warm 20k fashion search takes 2-2.5 ms, but 3-4.5 ms on a loaded 2-core machine
#: (and under a profiler), so at 3 ms searches flipped to the executor for a while, where they
#: waited for the GIL behind the saturated loop (up to 5 ms per hand-off) and queued behind each
#: other: the search p99 of ``bench api``. A 10 ms stall of the loop is below what one such flip cost.
INLINE_BELOW_S = _env_float("VISIONLAKE_SERVICE_INLINE_BELOW_S", 0.010)
#: Threads of the query executor (the hot queries that do not run inline), one queue, first in first out.
QUERY_THREADS = max(1, int(_env_float("VISIONLAKE_SERVICE_QUERY_THREADS", 1)))


class QueryRunner:
    """Runs short, hot queries (identify by embedding, search) on the event loop, others on its own
    first-in-first-out executor.

    A thread hop costs more than a warm 100k-face search (two GIL hand-offs and loop wake-ups:
    measured ~0.6 ms of CPU per request of the ~2 ms total under 50 clients). So a query runs inline
    when the caller says its state is warm (indexes and caches loaded, nothing to repair) *and* the
    moving average of its recent run times is below :data:`INLINE_BELOW_S`; otherwise, and always for
    its first run, it goes to the executor under the request timeout. A query that turns slow (a
    larger gallery, a busy disk) moves off the loop after a few runs. Run times are the thread's CPU
    time, so time spent waiting for the GIL behind other requests does not count as the query being slow.
    A cold run (``warm=False``) is not counted: it times the loading, and a 1.4 s gallery load kept a
    2 ms query off the loop for its next ~20 runs, all queued behind each other at start.

    The executor has :data:`QUERY_THREADS` threads (default one) and one queue, not the app's
    40-thread pool: CPU-bound queries gain nothing from more threads than the GIL lets run, and 40
    of them round-robining on the GIL (a switch every 5 ms) made every query in flight as slow as
    the slowest: ``bench api`` saw a search p99 four times its median while searches went to the
    pool. In one queue each query waits only for those ahead of it. A query still waiting when its
    timeout passes is dropped from the queue (never run) and answered 503 ``timeout``; one already
    running finishes in the background and its result is dropped.
    """

    def __init__(self, inline_below_s: float = INLINE_BELOW_S, threads: int = QUERY_THREADS) -> None:
        self.inline_below_s = inline_below_s
        self.threads = max(1, int(threads))
        self._ewma: dict[str, float] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_guard = threading.Lock()

    def _note(self, key: str, seconds: float) -> None:
        old = self._ewma.get(key)
        self._ewma[key] = seconds if old is None else 0.8 * old + 0.2 * seconds

    def estimate(self, key: str) -> float | None:
        return self._ewma.get(key)

    def executor(self) -> ThreadPoolExecutor:
        """The query executor, started on first use (threads named ``visionlake-query``)."""
        with self._pool_guard:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="visionlake-query")
            return self._pool

    def close(self) -> None:
        """Stop the executor: queued queries are cancelled, a running one is not waited for."""
        with self._pool_guard:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, key: str, fn: Callable[..., T], *args: Any, timeout: float, warm: bool = True,
                  **kwargs: Any) -> T:
        est = self._ewma.get(key)
        if warm and est is not None and est < self.inline_below_s:
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._note(key, time.thread_time() - t0)

        def timed() -> T:
            _apply_search_threads()  # the service's FAISS team size in this thread too
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                if warm:  # a cold run times the loading (1.4 s for a 100k gallery), not the query
                    self._note(key, time.thread_time() - t0)

        loop = asyncio.get_running_loop()
        try:
            # wait_for cancels the future on timeout: a query not started yet leaves the queue unrun
            out = await asyncio.wait_for(loop.run_in_executor(self.executor(), timed), timeout)
        except TimeoutError as exc:
            raise _timeout(timeout) from exc
        if not warm:  # this run loaded what later queries keep using: out of the collector's way
            from visionlake.service.heap import settle

            settle()
        return out


def _timeout(seconds: float) -> ApiError:
    return ApiError(503, "timeout", f"the request took longer than {seconds:g} s and was abandoned",
                    headers={"Retry-After": "5"})


#: OpenMP threads per FAISS search in the service's threads; None: left as the library sets it.
_search_threads: int | None = None
_thread_local = threading.local()


def configure_search_threads(n: int | None) -> None:
    """One OpenMP team size for FAISS searches in *every* thread of the service, not only the caller's.

    OpenMP keeps the team size per thread: ``faiss.omp_set_num_threads`` in the main thread leaves
    each thread-pool worker at the default (all cores). A single-query search there runs a team of
    spinning threads: measured ~20 ms of CPU per fashion search instead of ~4.5 ms inline, which also
    pushed :class:`QueryRunner`'s estimate over its limit so that queries never came back inline.
    The main thread is set here; each worker thread is set before its first task (:func:`run_blocking`).
    """
    global _search_threads
    _search_threads = n
    _thread_local.omp = None
    _apply_search_threads()


def search_threads() -> int:
    """Threads one query may use in the service (FAISS, and the ONNX models that embed a query)."""
    return _search_threads or 1


def _apply_search_threads() -> None:
    n = _search_threads
    if n is None or getattr(_thread_local, "omp", None) == n:
        return
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass
    _thread_local.omp = n


def _in_worker(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    _apply_search_threads()
    return fn(*args, **kwargs)


async def run_blocking(fn: Callable[..., T], *args: Any, timeout: float, **kwargs: Any) -> T:
    """Run blocking work in the thread pool; 503 ``timeout`` when it takes longer than ``timeout``.
    The worker thread gets the service's FAISS thread count first (see :func:`configure_search_threads`)."""
    try:
        return await asyncio.wait_for(run_in_threadpool(_in_worker, fn, *args, **kwargs), timeout)
    except TimeoutError as exc:
        raise _timeout(timeout) from exc


__all__ = ["BodySizeLimit", "QueryRunner", "RateLimiter", "ServiceLimits", "check_image_pixels",
           "check_table_bounds", "configure_search_threads", "run_blocking", "search_threads"]
