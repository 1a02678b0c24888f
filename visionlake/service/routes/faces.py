"""Faces: detect, verify, identify (photo or embedding), enroll, people, forget, unknown-person groups.

Every call goes through :mod:`visionlake.faces.gallery` / :mod:`visionlake.faces.cluster`, the same
functions the CLI uses, so consent, validation, audit and verified erasure behave identically.
The service adds who is calling (the audit actor is the API key), scope checks and locking: searches
share a collection's index, enrollment and erasure take it exclusively.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from visionlake.faces import cluster, gallery
from visionlake.faces.identify import Gallery, pack_name
from visionlake.faces.models import Face
from visionlake.service.deps import (
    HOT_SECURITY,
    CollectionName,
    Editor,
    FaceId,
    GroupId,
    HotViewer,
    PersonId,
    State,
    Viewer,
    find_collection,
    lake_file,
    service_state,
)
from visionlake.service.errors import COMMON, ApiError, responses
from visionlake.service.limits import check_image_pixels, run_blocking

router = APIRouter(tags=["faces"])

Far = Annotated[float | None, Form(gt=0, lt=1, description="False accept rate of the calibrated threshold")]
Threshold = Annotated[float | None, Form(ge=-1, le=1, description="Explicit cosine threshold (overrides far)")]


# ---------------------------------------------------------------------------------------------- models
class FaceBox(BaseModel):
    box: list[int] = Field(description="left, top, right, bottom in pixels of the uploaded photo")
    landmarks: list[list[float]] = []
    score: float
    quality: float


class DetectOut(BaseModel):
    width: int
    height: int
    pack: str = Field(description="Face pack whose detector found these faces (the collection's, if one was named)")
    faces: list[FaceBox]


class Match(BaseModel):
    person: str
    person_id: int
    score: float
    face_id: int


class IdentifiedFace(BaseModel):
    box: list[int] | None = None
    quality: float | None = None
    identity: str = Field(description="Name of the best match, or 'unknown'")
    best_score: float | None = None
    matches: list[Match]
    warning: str | None = None


class IdentifyOut(BaseModel):
    collection: str
    threshold: float
    faces: list[IdentifiedFace]
    probe_kept: bool = False


class EmbeddingQuery(BaseModel):
    embeddings: list[list[float]] = Field(min_length=1, max_length=64,
                                          description="Pre-computed face templates (one per face)")
    top: int = Field(default=5, ge=1, le=100)
    far: float | None = Field(default=1e-3, gt=0, lt=1)
    threshold: float | None = Field(default=None, ge=-1, le=1)


class VerifyOut(BaseModel):
    similarity: float
    distance: float
    threshold: float
    far: float | None = None
    same: bool
    pack: str


class PersonOut(BaseModel):
    id: int
    name: str
    faces: int
    photos: int
    consent: str | None = None
    created_at: str | None = None


class EnrollOut(BaseModel):
    collection: str
    person: str
    person_id: int
    photos: int
    faces_added: int
    faces_linked: int
    face_ids: list[int]


class ErasureCheck(BaseModel):
    check: str
    ok: bool
    found: list[Any] = []


class ForgetOut(BaseModel):
    collection: str
    person: str
    removed: dict[str, int]
    checks: list[ErasureCheck]
    ok: bool = Field(description="True only when every independent erasure check passed")
    resumed: bool = Field(False, description="True when this call finished an erasure a crash interrupted")


class ForgetIn(BaseModel):
    person: str = Field(min_length=1, max_length=200, description="Name of the person to erase")


class GroupOut(BaseModel):
    id: int
    label: str | None = None
    faces: int
    sample_face_ids: list[int] = []


class GroupFace(BaseModel):
    id: int
    image_id: int
    quality: float
    has_crop: bool


class ClusterIn(BaseModel):
    threshold: float | None = Field(default=None, ge=-1, le=1)
    min_size: int = Field(default=2, ge=1, le=1000)


class ClusterOut(BaseModel):
    collection: str
    new_faces: int
    groups_created: int
    grouped_new: int
    joined_existing: int
    matched_enrolled: int
    ungrouped: int
    groups: int


class RenameIn(BaseModel):
    label: str = Field(min_length=1, max_length=200)


class RenameOut(BaseModel):
    id: int
    label: str


class MergeIn(BaseModel):
    group_ids: list[Annotated[int, Field(ge=0, le=2**53)]] = Field(min_length=2, max_length=100)


class MergeOut(BaseModel):
    id: int
    merged: list[int]
    faces_moved: int


class SplitIn(BaseModel):
    face_ids: list[Annotated[int, Field(ge=0, le=2**53)]] | None = Field(default=None, max_length=10_000)
    threshold: float | None = Field(default=None, ge=-1, le=1)


class SplitOut(BaseModel):
    id: int
    new_groups: list[int]
    faces_moved: int


class NameGroupIn(BaseModel):
    person: str = Field(min_length=1, max_length=200)
    consent: str = Field(min_length=1, max_length=2000, description="Legal basis / consent record for enrolling")


class NameGroupOut(BaseModel):
    person: str
    person_id: int
    faces: int


# ---------------------------------------------------------------------------------------------- helpers
async def _read_image(st: Any, upload: UploadFile) -> bytes:
    data = await upload.read()
    if not data:
        raise ApiError(400, "bad_input", f"{upload.filename or 'the upload'} is empty")
    check_image_pixels(data, st.limits.max_image_pixels)
    return data


def _faces_collection(st: Any, name: str, who: Any) -> Any:
    col = find_collection(st, name, who)
    if col.purpose != "faces":
        raise ApiError(400, "bad_input", f"collection {name!r} is a {col.purpose} collection, not a faces one")
    return col


def _pipeline(st: Any) -> Any:
    return gallery.get_pipeline()


def _gallery(st: Any, col: Any) -> Gallery:
    """The app's :class:`Gallery` of a collection (one per collection row per app: two lakes in one
    process share no ids, and a collection deleted and created again is a new gallery).

    It caches names, pack, dimension and thresholds and re-reads them only when the catalog's
    generation counter of the collection moves (every writer, in any process, moves it); audit
    entries go to the app's buffered writer; index files are reloaded by the app itself
    (:meth:`ServiceState.refresh_index`, under the collection lock), not by the gallery.
    """
    galleries = getattr(st, "galleries", None)
    if galleries is None:
        with st._locks_guard:
            galleries = getattr(st, "galleries", None)
            if galleries is None:
                galleries = st.galleries = {}
    key = (col.name, col.id)
    g = galleries.get(key)
    if g is None:
        with st._locks_guard:
            g = galleries.get(key)
            if g is None:
                if len(galleries) > 1000:
                    galleries.clear()
                g = Gallery(st.lake, col.name, audit=st.audit.record, reload_index=False)
                galleries[key] = g
    return g


def identify_embeddings(st: Any, col: Any, vecs: np.ndarray, top: int, far: float | None,
                        threshold: float | None, actor: str) -> dict[str, Any]:
    """1:N search of pre-computed templates through the collection's :class:`Gallery`."""
    st.refresh_index(col.name, "faces")  # another process saved the index: reload (outside the lock)
    with st.lock(col.name).read():
        # audited while the read lock is held: a forget (write lock) flushes the audit queue first
        # and so always finds this entry in the log to scrub
        out = _gallery(st, col).identify_vectors(vecs, top=top, far=far, threshold=threshold, actor=actor)
    out["probe_kept"] = False
    return out


def _detect_out(found: dict[str, Any]) -> dict[str, Any]:
    return {"width": found["width"], "height": found["height"], "pack": found["pack"],
            "faces": [FaceBox(box=[int(v) for v in f.box], landmarks=[list(p) for p in f.landmarks],
                              score=float(f.score), quality=float(f.quality)) for f in found["faces"]]}


async def _detect(st: Any, who: Any, collection: str | None, image: UploadFile) -> dict[str, Any]:
    """Detection with a collection's own pack (the detector its faces were found with), or the
    lake's default pack when no collection is named."""
    col = _faces_collection(st, collection, who) if collection else None
    data = await _read_image(st, image)
    label = image.filename or "<upload>"

    def work() -> dict[str, Any]:
        with st.model_lock:
            if col is not None:
                return _detect_out(_gallery(st, col).detect(data, label=label))
            photo = gallery.read_photo(data, label=label)
            pipe = _pipeline(st)
            return _detect_out({"width": photo.width, "height": photo.height, "pack": pack_name(pipe),
                                "faces": pipe.detect(photo.image)})

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


# ---------------------------------------------------------------------------------------------- routes
@router.post("/faces/detect", response_model=DetectOut, responses=responses(*COMMON, 400, 404, 413, 503),
             summary="Find faces in a photo (boxes, landmarks, quality)")
async def detect(st: State, who: Viewer, image: Annotated[UploadFile, File()],
                 collection: Annotated[str | None, Form(
                     max_length=200, description="Detect with this faces collection's pack "
                     "(default: the lake's default pack)")] = None) -> dict[str, Any]:
    return await _detect(st, who, collection, image)


@router.post("/collections/{collection}/faces/detect", response_model=DetectOut,
             responses=responses(*COMMON, 400, 404, 413, 503),
             summary="Find faces in a photo with the collection's own pack (boxes, landmarks, quality)")
async def detect_in(collection: CollectionName, st: State, who: Viewer,
                    image: Annotated[UploadFile, File()]) -> dict[str, Any]:
    return await _detect(st, who, collection, image)


@router.post("/faces/verify", response_model=VerifyOut, responses=responses(*COMMON, 400, 404, 413, 503),
             summary="1:1 verification of the largest face of two photos (audited)")
async def verify(st: State, who: Viewer, a: Annotated[UploadFile, File()], b: Annotated[UploadFile, File()],
                 far: Far = 1e-3, threshold: Threshold = None,
                 collection: Annotated[str | None, Form(
                     max_length=200, description="Compare with this faces collection's pack and its calibrated "
                     "thresholds (default: the lake's default pack)")] = None) -> dict[str, Any]:
    col = _faces_collection(st, collection, who) if collection else None
    da, db = await _read_image(st, a), await _read_image(st, b)

    def work() -> dict[str, Any]:
        with st.model_lock:
            pipe = _gallery(st, col).pipeline if col is not None else None
            return gallery.verify(da, db, far=far, threshold=threshold, lake=st.lake, pipeline=pipe,
                                  actor=who.actor)

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/faces/identify", response_model=IdentifyOut,
             responses=responses(*COMMON, 400, 404, 413, 503),
             summary="Identify every face of a photo against the enrolled people (audited)")
async def identify(
    collection: CollectionName, st: State, who: Viewer, image: Annotated[UploadFile, File()],
    top: Annotated[int, Form(ge=1, le=100)] = 5, far: Far = 1e-3, threshold: Threshold = None,
    keep_probe: Annotated[bool, Form(description="Store the probe photo (purged by retention)")] = False,
) -> dict[str, Any]:
    col = _faces_collection(st, collection, who)
    data = await _read_image(st, image)

    def work() -> dict[str, Any]:
        st.refresh_index(col.name, "faces")
        with st.model_lock, st.lock(collection).read():
            out = _gallery(st, col).identify(data, top=top, threshold=threshold, far=far,
                                             keep_probe=keep_probe, actor=who.actor,
                                             label=image.filename or "<upload>")
        out["probe_kept"] = bool(out.get("probe_kept"))
        return out

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/faces/identify-embedding", response_model=IdentifyOut,
             responses=responses(*COMMON, 400, 404), openapi_extra=HOT_SECURITY,
             summary="Identify pre-computed face templates (no photo; audited)")
async def identify_embedding(collection: CollectionName, body: EmbeddingQuery, request: Request, who: HotViewer
                             ) -> dict[str, Any]:
    st = service_state(request)  # not the State dependency: one level less to solve on the hottest route
    col = _faces_collection(st, collection, who)
    lens = {len(e) for e in body.embeddings}
    if len(lens) != 1 or 0 in lens or max(lens) > 4096:
        raise ApiError(400, "bad_input", "all embeddings must have the same, non-zero length")
    vecs = np.asarray(body.embeddings, dtype=np.float32)
    warm = _gallery(st, col).warm() and st.index_loaded(col.name, "faces")
    return await st.queries.run("identify-embedding", identify_embeddings, st, col, vecs, body.top, body.far,
                                body.threshold, who.actor, warm=warm,
                              timeout=st.limits.request_timeout_s)


@router.get("/collections/{collection}/people", response_model=list[PersonOut], responses=responses(*COMMON, 404),
            summary="Enrolled people with their number of faces and photos")
async def people(collection: CollectionName, st: State, who: Viewer) -> list[dict[str, Any]]:
    find_collection(st, collection, who)
    return await run_blocking(gallery.people, st.lake, collection, timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/people", response_model=EnrollOut, status_code=201,
             responses=responses(*COMMON, 400, 403, 404, 413, 503),
             summary="Enroll a person from one or more photos, with a consent record")
async def enroll(
    collection: CollectionName, st: State, who: Editor,
    person: Annotated[str, Form(min_length=1, max_length=200)],
    consent: Annotated[str, Form(min_length=1, max_length=2000,
                                 description="Consent / legal basis record, stored with the person")],
    files: Annotated[list[UploadFile], File(description="Photos showing the person alone")],
    largest: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    _faces_collection(st, collection, who)
    if not consent.strip():
        raise ApiError(400, "bad_input", "enrollment needs a consent record")
    photos = [await _read_image(st, f) for f in files]

    def work() -> dict[str, Any]:
        with st.model_lock, st.lock(collection).write():
            try:
                return gallery.enroll(st.lake, collection, person=person, images=photos, consent=consent.strip(),
                                      largest=largest, actor=who.actor)
            finally:
                st.note_written(collection)

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


# Names never travel in a URL (URLs end up in access logs, proxies and browser history): erasure is
# addressed by person id in the path, or by name in a JSON body.
@router.delete("/collections/{collection}/people/{person_id}", response_model=ForgetOut,
               responses=responses(*COMMON, 403, 404),
               summary="Forget a person by id: erase every trace, then verify the erasure independently")
async def forget(collection: CollectionName, person_id: PersonId, st: State, who: Editor) -> dict[str, Any]:
    _faces_collection(st, collection, who)
    return await run_blocking(_forget_work, st, collection, {"person_id": person_id}, who.actor,
                              timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/people/forget", response_model=ForgetOut,
             responses=responses(*COMMON, 403, 404),
             summary="Forget a person by name (in the body, never in the URL); reruns finish an interrupted erasure")
async def forget_by_name(collection: CollectionName, body: ForgetIn, st: State, who: Editor) -> dict[str, Any]:
    _faces_collection(st, collection, who)
    return await run_blocking(_forget_work, st, collection, {"person": body.person}, who.actor,
                              timeout=st.limits.request_timeout_s)


def _forget_work(st: Any, collection: str, who_: dict[str, Any], actor: str) -> dict[str, Any]:
    with st.lock(collection).write():
        st.audit.flush()  # queued identify entries naming this person must be in the log to be scrubbed
        try:
            return gallery.forget(st.lake, collection, actor=actor, **who_)
        finally:
            st.note_written(collection)


@router.get("/collections/{collection}/faces/{face_id}/crop", response_class=FileResponse,
            responses={**responses(*COMMON, 404), 200: {"content": {"image/jpeg": {}}, "description": "Face crop"}},
            summary="The aligned crop of one face (until retention purges it)")
async def face_crop(collection: CollectionName, face_id: FaceId, st: State, who: Viewer) -> FileResponse:
    col = find_collection(st, collection, who)
    with st.lake.session() as s:
        f = s.get(Face, face_id)
        rel = f.crop if f is not None and f.collection_id == col.id else None
    return lake_file(st, rel, f"no crop for face {face_id}")


# ---------------------------------------------------------------------------------------------- groups
@router.get("/collections/{collection}/groups", response_model=list[GroupOut], responses=responses(*COMMON, 404),
            summary="Groups of faces of unknown (not enrolled) people, largest first")
async def groups(collection: CollectionName, st: State, who: Viewer) -> list[dict[str, Any]]:
    col = find_collection(st, collection, who)

    def work() -> list[dict[str, Any]]:
        out = cluster.groups(st.lake, collection)
        with st.lake.session() as s:
            for g in out:
                g["sample_face_ids"] = list(s.scalars(
                    select(Face.id).where(Face.group_id == g["id"], Face.collection_id == col.id,
                                          Face.crop.is_not(None)).order_by(Face.quality.desc()).limit(6)))
        return out

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.get("/collections/{collection}/groups/{group_id}/faces", response_model=list[GroupFace],
            responses=responses(*COMMON, 404), summary="Faces of one group (to choose which to split off)")
async def group_faces(collection: CollectionName, group_id: GroupId, st: State, who: Viewer) -> list[dict[str, Any]]:
    col = find_collection(st, collection, who)
    with st.lake.session() as s:
        rows = s.execute(select(Face.id, Face.image_id, Face.quality, Face.crop).where(
            Face.group_id == group_id, Face.collection_id == col.id).order_by(Face.quality.desc()).limit(500)).all()
    if not rows:
        raise ApiError(404, "not_found", f"no face group {group_id} in this collection")
    return [{"id": i, "image_id": im, "quality": float(q or 0), "has_crop": c is not None} for i, im, q, c in rows]


@router.post("/collections/{collection}/groups/cluster", response_model=ClusterOut,
             responses=responses(*COMMON, 400, 403, 404), summary="Group new unknown faces (incremental)")
async def run_cluster(collection: CollectionName, body: ClusterIn, st: State, who: Editor) -> dict[str, Any]:
    _faces_collection(st, collection, who)

    def work() -> dict[str, Any]:
        with st.lock(collection).write():
            try:
                return cluster.cluster(st.lake, collection, threshold=body.threshold, min_size=body.min_size)
            finally:
                st.note_written(collection)

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.patch("/collections/{collection}/groups/{group_id}", response_model=RenameOut,
              responses=responses(*COMMON, 400, 403, 404), summary="Label a group")
async def rename_group(collection: CollectionName, group_id: GroupId, body: RenameIn, st: State, who: Editor
                       ) -> dict[str, Any]:
    find_collection(st, collection, who)
    return await run_blocking(cluster.rename_group, st.lake, collection, group_id, body.label,
                              timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/groups/merge", response_model=MergeOut,
             responses=responses(*COMMON, 400, 403, 404), summary="Merge groups into the first one")
async def merge_groups(collection: CollectionName, body: MergeIn, st: State, who: Editor) -> dict[str, Any]:
    find_collection(st, collection, who)
    return await run_blocking(cluster.merge_groups, st.lake, collection, body.group_ids,
                              timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/groups/{group_id}/split", response_model=SplitOut,
             responses=responses(*COMMON, 400, 403, 404),
             summary="Split chosen faces off a group, or re-cluster it more strictly")
async def split_group(collection: CollectionName, group_id: GroupId, body: SplitIn, st: State, who: Editor
                      ) -> dict[str, Any]:
    find_collection(st, collection, who)
    return await run_blocking(cluster.split_group, st.lake, collection, group_id, body.face_ids, body.threshold,
                              timeout=st.limits.request_timeout_s)


@router.post("/collections/{collection}/groups/{group_id}/name", response_model=NameGroupOut,
             responses=responses(*COMMON, 400, 403, 404),
             summary="Enroll a group as a person (with a consent record)")
async def name_group(collection: CollectionName, group_id: GroupId, body: NameGroupIn, st: State, who: Editor
                     ) -> dict[str, Any]:
    find_collection(st, collection, who)

    def work() -> dict[str, Any]:
        with st.lock(collection).write():
            try:
                return cluster.name_group(st.lake, collection, group_id, body.person, consent=body.consent)
            finally:
                st.note_written(collection)

    return await run_blocking(work, timeout=st.limits.request_timeout_s)
