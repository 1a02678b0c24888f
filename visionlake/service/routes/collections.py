"""Collections: list (only those the key may see), create, inspect, delete, images and thumbnails."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from visionlake.catalog.models import Collection, Image
from visionlake.service.deps import Admin, CollectionName, ImageId, State, Viewer, find_collection, lake_file
from visionlake.service.errors import COMMON, ApiError, responses
from visionlake.service.limits import run_blocking
from visionlake.service.schemas import CollectionCreate, CollectionOut, Deleted, ImageOut, ImagePage, IndexInfo

router = APIRouter(tags=["collections"])


def _summary(st: Any, col: Collection) -> dict[str, Any]:
    lake = st.lake
    with lake.session() as s:
        images = s.scalar(select(func.count(Image.id)).where(Image.collection_id == col.id)) or 0
        people = faces = None
        if col.purpose == "faces":
            from visionlake.faces.models import Face, Person

            people = s.scalar(select(func.count(Person.id)).where(Person.collection_id == col.id)) or 0
            faces = s.scalar(select(func.count(Face.id)).where(Face.collection_id == col.id)) or 0
    indexes = []
    root = lake.collection_dir(col.name) / "index"
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if (p / "index.json").exists()):
            try:
                with open(sub / "index.json", "rb") as fh:
                    head = fh.read(4096)  # the header fields come before the (large) metadata map
                h = _header_fields(head)
            except OSError:
                h = {}
            indexes.append(IndexInfo(space=sub.name, kind=h.get("kind"), dim=h.get("dim"), count=h.get("count")))
    return {"name": col.name, "purpose": col.purpose, "images": int(images),
            "created_at": col.created_at.isoformat() if col.created_at else None,
            "people": people, "faces": faces, "indexes": indexes}


def _header_fields(head: bytes) -> dict[str, Any]:
    """kind/dim/count from the start of an index.json without parsing its metadata map."""
    import re

    out: dict[str, Any] = {}
    text = head.decode("utf-8", "ignore")
    for key in ("kind", "dim", "count"):
        m = re.search(rf'"{key}":\s*("([^"]*)"|(\d+))', text)
        if m:
            out[key] = m.group(2) if m.group(2) is not None else int(m.group(3))
    return out


@router.get("/collections", response_model=list[CollectionOut], responses=responses(*COMMON),
            summary="List the collections this key may use")
async def list_collections(st: State, who: Viewer) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        with st.lake.session() as s:
            cols = [c for c in s.scalars(select(Collection).order_by(Collection.name)) if who.can_see(c.name)]
        return [_summary(st, c) for c in cols]

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.post("/collections", response_model=CollectionOut, status_code=201,
             responses=responses(*COMMON, 400, 403, 409), summary="Create a collection (admin)")
async def create_collection(body: CollectionCreate, st: State, who: Admin) -> dict[str, Any]:
    if not who.can_see(body.name):
        raise ApiError(403, "forbidden", "this key may only use its own collections")
    settings = {"tagger_options": {"model": body.tagger_model}} if body.tagger_model else None
    col = await run_blocking(st.lake.create_collection, body.name, body.purpose, settings,
                             timeout=st.limits.request_timeout_s)
    st.forget_collection(body.name)
    return _summary(st, col)


@router.get("/collections/{collection}", response_model=CollectionOut, responses=responses(*COMMON, 404),
            summary="One collection with counts and indexes")
async def get_collection(collection: CollectionName, st: State, who: Viewer) -> dict[str, Any]:
    col = find_collection(st, collection, who)
    return await run_blocking(_summary, st, col, timeout=st.limits.request_timeout_s)


@router.delete("/collections/{collection}", response_model=Deleted, responses=responses(*COMMON, 403, 404),
               summary="Delete a collection and everything derived from it (admin)")
async def delete_collection(collection: CollectionName, st: State, who: Admin) -> dict[str, str]:
    find_collection(st, collection, who)

    def work() -> None:
        with st.lock(collection).write():
            st.lake.delete_collection(collection)
            st.forget_collection(collection)
            st.note_written(collection)

    await run_blocking(work, timeout=st.limits.request_timeout_s)
    return {"deleted": collection}


@router.get("/collections/{collection}/images", response_model=ImagePage, responses=responses(*COMMON, 400, 404),
            summary="Images of a collection, optionally filtered on metadata")
async def list_images(
    collection: CollectionName, st: State, who: Viewer,
    where: Annotated[str | None, Query(max_length=2000, description='JSON object, e.g. {"year": "2012"}')] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    find_collection(st, collection, who)
    filt = parse_where(where)
    imgs = await run_blocking(st.lake.images, collection, filt, limit, offset, timeout=st.limits.request_timeout_s)
    return {"images": [image_out(collection, i) for i in imgs], "offset": offset, "limit": limit}


def parse_where(where: str | None) -> dict[str, Any] | None:
    """A metadata filter from a JSON query parameter: field -> value or list of values."""
    if not where:
        return None
    try:
        filt = json.loads(where)
    except ValueError as exc:
        raise ApiError(400, "bad_input", f"where is not valid JSON: {exc}") from exc
    if not isinstance(filt, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | list) for k, v in filt.items()
    ):
        raise ApiError(400, "bad_input", 'where must be a JSON object of field -> value or list, e.g. {"year": "2012"}')
    check_where_keys(filt)
    return filt


def check_where_keys(filt: dict[str, Any] | None) -> None:
    """400 for field names that cannot be a metadata key (NUL, quotes...): they would break the SQL JSON path."""
    from visionlake.lake import check_meta_key

    for key in filt or {}:
        check_meta_key(key)


def image_out(collection: str, img: Image) -> ImageOut:
    return ImageOut(id=img.id, path=img.path, width=img.width or 0, height=img.height or 0, format=img.format,
                    thumbnail_url=f"/collections/{collection}/images/{img.id}/thumbnail" if img.thumbnail else None,
                    meta={k: v for k, v in (img.meta or {}).items() if k != "stored"})


@router.get("/collections/{collection}/images/{image_id}/thumbnail", response_class=FileResponse,
            responses={**responses(*COMMON, 404), 200: {"content": {"image/jpeg": {}}, "description": "Thumbnail"}},
            summary="The stored thumbnail of an image")
async def thumbnail(collection: CollectionName, image_id: ImageId, st: State, who: Viewer) -> FileResponse:
    col = find_collection(st, collection, who)
    with st.lake.session() as s:
        img = s.get(Image, image_id)
        rel = img.thumbnail if img is not None and img.collection_id == col.id else None
    return lake_file(st, rel, f"no thumbnail for image {image_id}")
