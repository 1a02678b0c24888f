"""The visionlake service: one FastAPI app exposing the lake over HTTP, plus the web UI.

``create_app(lake_path)`` builds everything; ``visionlake serve`` runs it with uvicorn. Every area of
:data:`visionlake.areas.AREAS` is mounted (a route module that fails to import fails the app: it is
part of the package, never an optional feature), and ``/health`` lists them. The OpenAPI page
(``/docs``) is the API reference.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select, text

from visionlake.areas import AREAS
from visionlake.service import access_log, heap
from visionlake.service.deps import Caller, State
from visionlake.service.docs_pages import install_docs
from visionlake.service.errors import COMMON, install_error_handlers, responses
from visionlake.service.jobs import JobRunner
from visionlake.service.limits import BodySizeLimit, ServiceLimits, configure_search_threads
from visionlake.service.metrics import Metrics, MetricsMiddleware
from visionlake.service.schemas import Health
from visionlake.service.state import ServiceState

if TYPE_CHECKING:
    from visionlake.lake import Lake

log = logging.getLogger("visionlake.service")
STATIC = Path(__file__).parent / "static"

CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
#: Sent with every response (API, UI, static files, errors); a route's own value wins.
SECURITY_HEADERS: dict[bytes, bytes] = {
    b"content-security-policy": CSP.encode(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
    b"cross-origin-opener-policy": b"same-origin",
    b"cross-origin-resource-policy": b"same-origin",
}


#: Areas whose routers are matched first (their routes answer most requests; see create_app).
HOT_AREAS = ("fashion", "faces")
#: Order of the sections of /docs and /redoc (independent of the order routes are matched in).
DOC_TAGS = ("collections", "ingestion", "faces", "fashion", "trends", "audit", "admin", "service")


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response, including ``/static/*`` files and
    errors raised before a route runs (413, 404), which per-route headers would miss."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)



def _version() -> str:
    try:
        from importlib.metadata import version

        return version("visionlake")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "0+unknown"


def create_app(
    lake_path: str | os.PathLike[str] | None = None,
    *,
    lake: Lake | None = None,
    limits: ServiceLimits | None = None,
    ingest_roots: list[str | os.PathLike[str]] | None = None,
    job_workers: int | None = None,
    retention_interval_s: float = 3600.0,
) -> FastAPI:
    """Build the app on a lake folder (or an open :class:`~visionlake.lake.Lake`).

    ``ingest_roots``: folders editors may ingest from by server path (env ``VISIONLAKE_INGEST_ROOTS``,
    separated by ``os.pathsep``); admins may use any path. ``job_workers``: worker processes per
    ingestion job (default: half the cores).
    """
    if lake is None:
        from visionlake.lake import Lake

        lake = Lake(lake_path)
    if ingest_roots is None:
        env = os.environ.get("VISIONLAKE_INGEST_ROOTS", "")
        ingest_roots = [p for p in env.split(os.pathsep) if p]
    workers = job_workers if job_workers is not None else max(1, (os.cpu_count() or 2) // 2)
    _single_threaded_search()
    access_log.install()
    st = ServiceState(lake=lake, limits=limits or ServiceLimits(),
                      ingest_roots=[Path(p) for p in ingest_roots], job_workers=workers)
    st.metrics = Metrics()
    st.jobs = JobRunner(st)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        access_log.install()  # again: uvicorn configures its loggers after create_app
        st.jobs.start()
        heap.settle()  # modules, routes and schemas: alive for good, never worth a GC scan
        t = threading.Thread(target=_retention_loop, args=(st, stop, retention_interval_s), daemon=True,
                             name="visionlake-retention")
        t.start()
        try:
            yield
        finally:
            stop.set()
            st.jobs.stop()
            st.queries.close()
            st.audit.close()

    app = FastAPI(
        title="visionlake",
        version=_version(),
        description=(
            "Faces at gallery scale and fashion trend intelligence over one lake.\n\n"
            "Every endpoint except `/health` needs an API key (`Authorization: Bearer <key>` or `X-API-Key`). "
            "Roles: viewer < editor < admin. A key scoped to some collections sees every other collection as "
            "nonexistent (404). Errors are `{\"error\": {\"code\", \"message\"}}`."
        ),
        lifespan=lifespan,
        openapi_tags=[{"name": t} for t in DOC_TAGS],
        docs_url=None,  # served from installed files by install_docs (no CDN)
        redoc_url=None,
    )
    app.state.service = st
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limits=st.limits)
    app.add_middleware(MetricsMiddleware, metrics=st.metrics)
    app.add_middleware(SecurityHeaders)

    from visionlake.service.routes import admin, audit, collections, ingest

    # FastAPI tries the included routers in order and scans every router before the one that
    # matches, route by route, on every request: the routers of the hot queries (fashion search,
    # identify by embedding) go first. No path can match routes of two routers (each router has its
    # own literal segment after /collections/{collection}/), so the order changes the cost only;
    # the docs keep their order through ``openapi_tags``.
    area_routers = {area.name: importlib.import_module(area.routes).router for area in AREAS}
    first = [name for name in HOT_AREAS if name in area_routers]
    for name in first:
        app.include_router(area_routers[name])
    app.include_router(collections.router)
    app.include_router(ingest.router)
    areas: dict[str, bool] = {}
    for area in AREAS:
        if area.name not in first:
            app.include_router(area_routers[area.name])
        areas[area.name] = True
    app.include_router(audit.router)
    app.include_router(admin.router)
    st.areas = areas  # type: ignore[attr-defined]

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness and readiness (no key)")
    async def health(state: State) -> dict[str, Any]:
        try:
            with state.lake.session() as s:
                s.execute(text("SELECT 1"))
            catalog = "ok"
        except Exception:  # noqa: BLE001 - reported, not raised
            catalog = "unavailable"
        return {"status": "ok" if catalog == "ok" else "degraded", "version": app.version, "catalog": catalog,
                "areas": areas}

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"], responses=responses(*COMMON),
             summary="Prometheus metrics (request counts and latencies by route template, jobs)")
    async def metrics(state: State, who: Caller) -> PlainTextResponse:
        from visionlake.service.models import ApiKey, Job

        with state.lake.session() as s:
            jobs = dict(s.execute(select(Job.status, func.count(Job.id)).group_by(Job.status)).all())
            keys = s.scalar(select(func.count(ApiKey.id)).where(ApiKey.revoked_at.is_(None))) or 0
        extra = {f'jobs{{status="{k}"}}': v for k, v in sorted(jobs.items())}
        extra["api_keys_active"] = keys
        return PlainTextResponse(state.metrics.render(extra), media_type="text/plain; version=0.0.4")

    install_docs(app)
    _mount_ui(app)
    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` / several worker processes: the lake from ``VISIONLAKE_LAKE``,
    ingest roots from ``VISIONLAKE_INGEST_ROOTS`` and job worker processes from
    ``VISIONLAKE_SERVE_JOB_WORKERS``. Each worker process builds its own app (and caches)."""
    jobs = os.environ.get("VISIONLAKE_SERVE_JOB_WORKERS")
    heap.enable()  # a served worker process (see visionlake.service.heap)
    return create_app(None, job_workers=int(jobs) if jobs else None)


def _single_threaded_search() -> None:
    """One OpenMP thread per FAISS search, in the event loop's thread and in every pool thread: the
    server runs many single-query searches at once, and OpenMP teams per query oversubscribe the cores
    (measured 35 ms vs ~1 ms per 20k search under load). ``VISIONLAKE_SEARCH_THREADS`` overrides."""
    try:
        n = int(os.environ.get("VISIONLAKE_SEARCH_THREADS", "1"))
    except ValueError:
        n = 1
    configure_search_threads(max(1, n))


def _mount_ui(app: FastAPI) -> None:
    """The web UI: plain files from the package; Plotly from the installed ``plotly`` package."""
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"), headers=headers)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        import plotly

        path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        return FileResponse(path, media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _retention_loop(st: ServiceState, stop: threading.Event, every_s: float) -> None:
    """Purge by the retention setting once at start and then every ``every_s`` seconds."""
    from visionlake.service.retention import get_retention_days, purge

    while not stop.is_set():
        try:
            days = get_retention_days(st.lake)
            if days is not None:
                report = purge(st.lake, days)
                if report["probe_photos_deleted"] or report["face_crops_deleted"] or report["trend_tables_deleted"]:
                    log.info("retention purge: %s", report)
        except Exception:  # noqa: BLE001 - a failed purge is retried next round
            log.exception("retention purge failed")
        stop.wait(every_s)


__all__ = ["app_from_env", "create_app"]
