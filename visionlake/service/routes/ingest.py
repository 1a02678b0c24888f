"""Ingestion jobs: start from uploaded files or a server-side path, watch progress, cancel, read the report."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from visionlake.service.deps import CollectionName, Editor, JobId, State, Viewer, find_collection
from visionlake.service.errors import COMMON, ApiError, responses
from visionlake.service.limits import run_blocking
from visionlake.service.schemas import JobFromPath, JobOut

router = APIRouter(tags=["ingestion"])

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _allowed_path(st: Any, who: Any, raw: str) -> Path:
    """Editors may ingest only below the configured roots; admins anywhere the server can read."""
    try:
        path = Path(raw).expanduser().resolve()
        path.exists()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ApiError(400, "bad_input", f"not a usable server path ({type(exc).__name__})") from None
    if who.has_role("admin"):
        return path
    for root in st.ingest_roots:
        r = Path(root).resolve()
        if path == r or r in path.parents:
            return path
    roots = ", ".join(str(r) for r in st.ingest_roots) or "none configured"
    raise ApiError(403, "path_not_allowed", f"server-side paths must lie under an ingest root ({roots})")


@router.post("/collections/{collection}/jobs", response_model=JobOut, status_code=202,
             responses=responses(*COMMON, 400, 403, 404, 413), summary="Start ingesting uploaded files")
async def start_upload_job(
    collection: CollectionName, st: State, who: Editor,
    files: Annotated[list[UploadFile], File(description="Photos to ingest")],
) -> dict[str, Any]:
    find_collection(st, collection, who)
    if not files:
        raise ApiError(400, "bad_input", "upload at least one file")
    dest = st.lake.root / "uploads" / collection / secrets.token_hex(8)

    def save() -> None:
        dest.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for i, f in enumerate(files):
            name = _SAFE.sub("_", os.path.basename(f.filename or "")).strip("._") or f"upload_{i}"
            if name in used:
                name = f"{i}_{name}"
            used.add(name)
            with open(dest / name, "wb") as out:
                while chunk := f.file.read(1 << 20):
                    out.write(chunk)

    await run_blocking(save, timeout=st.limits.request_timeout_s)
    return st.jobs.submit(collection, str(dest), "upload", who.actor)


@router.post("/collections/{collection}/jobs/from-path", response_model=JobOut, status_code=202,
             responses=responses(*COMMON, 400, 403, 404), summary="Start ingesting a folder on the server")
async def start_path_job(collection: CollectionName, body: JobFromPath, st: State, who: Editor) -> dict[str, Any]:
    find_collection(st, collection, who)
    path = _allowed_path(st, who, body.path)
    if not path.exists():
        raise ApiError(400, "bad_input", f"{body.path} does not exist on the server")
    return st.jobs.submit(collection, str(path), "path", who.actor, body.include, body.exclude)


@router.get("/collections/{collection}/jobs", response_model=list[JobOut], responses=responses(*COMMON, 404),
            summary="Recent ingestion jobs of a collection")
async def list_jobs(collection: CollectionName, st: State, who: Viewer) -> list[dict[str, Any]]:
    find_collection(st, collection, who)
    return await run_blocking(st.jobs.list, collection, timeout=st.limits.request_timeout_s)


@router.get("/collections/{collection}/jobs/{job_id}", response_model=JobOut, responses=responses(*COMMON, 404),
            summary="Progress and, when finished, the report of a job")
async def get_job(collection: CollectionName, job_id: JobId, st: State, who: Viewer) -> dict[str, Any]:
    find_collection(st, collection, who)
    return await run_blocking(st.jobs.get, collection, job_id, timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/jobs/{job_id}/cancel", response_model=JobOut,
             responses=responses(*COMMON, 403, 404), summary="Cancel a queued or running job")
async def cancel_job(collection: CollectionName, job_id: JobId, st: State, who: Editor) -> dict[str, Any]:
    find_collection(st, collection, who)
    return await run_blocking(st.jobs.cancel, collection, job_id, timeout=st.limits.request_timeout_s)
