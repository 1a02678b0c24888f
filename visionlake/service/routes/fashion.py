"""Fashion: tag a photo, search a collection by photo, by words or by an image already in it, with filters.

Calls :func:`visionlake.fashion.search.search` and :class:`visionlake.fashion.tagger.FashionTagger`, the
same code as ``visionlake fashion ...``. The embedding model is the one the collection was tagged with
(collection setting ``tagger_options.model``, else ``VISIONLAKE_FASHION_MODEL``); it is loaded once per
server and shared. Without a model, text and photo queries answer 503 ``model_unavailable`` while
"more like this image" (an image id already embedded) still works.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from visionlake.catalog.models import Image
from visionlake.service.deps import (
    HOT_SECURITY,
    CollectionName,
    HotViewer,
    State,
    Viewer,
    find_collection,
    service_state,
)
from visionlake.service.errors import COMMON, ApiError, responses
from visionlake.service.limits import check_image_pixels, run_blocking, search_threads
from visionlake.service.routes.collections import check_where_keys, parse_where

router = APIRouter(tags=["fashion"])
_model_lock = threading.Lock()

WhereValue = str | int | float | list[str | int | float]


class SearchIn(BaseModel):
    text: str | None = Field(default=None, min_length=1, max_length=500, description="Words, e.g. 'red summer dress'")
    image_id: int | None = Field(default=None, ge=0, le=2**53, description="Find looks like this catalog image")
    where: dict[str, WhereValue] = Field(default_factory=dict, description="Metadata filter: field -> value or list")
    top: int = Field(default=24, ge=1, le=200)


class SearchHit(BaseModel):
    image_id: int
    score: float
    thumbnail_url: str | None = None
    meta: dict[str, Any] = {}


class SearchOut(BaseModel):
    collection: str
    query: str
    results: list[SearchHit]


class TagOut(BaseModel):
    attribute: str
    value: str
    confidence: float
    source: str
    region: str


class ColourOut(BaseModel):
    name: str
    family: str
    share: float
    hex: str


class TagResult(BaseModel):
    tags: list[TagOut]
    colour_family: str
    colour_model: str = "model-free"  # or the collection's trained colour head ("colour-head ...")
    colours: list[ColourOut]


class Facet(BaseModel):
    field: str
    values: dict[str, int]


def _fashion_collection(st: Any, name: str, who: Any) -> Any:
    col = find_collection(st, name, who)
    if col.purpose != "fashion":
        raise ApiError(400, "bad_input", f"collection {name!r} is a {col.purpose} collection, not a fashion one")
    return col


def _model_key(col: Any) -> str:
    opts = (col.settings or {}).get("tagger_options") or {}
    recorded = ((col.settings or {}).get("fashion_model") or {}).get("name")
    return f"{opts.get('backend', 'onnx')}:{opts.get('model')}:{recorded}"


def _model(st: Any, col: Any) -> Any:
    """The collection's embedding model, loaded once per server (ModelUnavailable -> 503)."""
    from visionlake.fashion.tagger import MODEL_SETTING, choose_model

    opts = (col.settings or {}).get("tagger_options") or {}
    ref = opts.get("model")
    key = _model_key(col)
    with _model_lock:
        if key not in st.fashion_models:  # the model the collection was embedded with (FashionSigLIP or backbone)
            # one intra-op thread, like FAISS: a second one spin-waits after every query (about
            # doubling the CPU of a text query) and competes with the other requests for the cores
            st.fashion_models[key] = choose_model(ref, opts.get("backend", "onnx"),
                                                  quantized=bool(opts.get("quantized")),
                                                  recorded=(col.settings or {}).get(MODEL_SETTING),
                                                  threads=search_threads())
        return st.fashion_models[key]


def _hits(collection: str, results: list[Any]) -> list[SearchHit]:
    return [SearchHit(image_id=r.image_id, score=r.score,
                      meta={k: v for k, v in (r.meta or {}).items() if k != "stored"},
                      thumbnail_url=f"/collections/{collection}/images/{r.image_id}/thumbnail" if r.thumbnail else None)
            for r in results]


async def _image(st: Any, upload: UploadFile) -> Any:
    from visionlake.imageio import Rejected, decode_rgb

    data = await upload.read()
    if not data:
        raise ApiError(400, "bad_input", "the uploaded image is empty")
    check_image_pixels(data, st.limits.max_image_pixels)
    try:
        return decode_rgb(data, st.limits.max_image_pixels)[0]
    except Rejected as rej:
        raise ApiError(400, "bad_input", f"{upload.filename or 'the upload'} is not a readable image "
                                         f"({rej.reason})") from None


@router.post("/collections/{collection}/fashion/search", response_model=SearchOut,
             responses=responses(*COMMON, 400, 404, 503), openapi_extra=HOT_SECURITY,
             summary="Search looks by words or by a catalog image")
async def search_text(collection: CollectionName, body: SearchIn, request: Request, who: HotViewer) -> dict[str, Any]:
    from visionlake.fashion.search import search

    st = service_state(request)  # not the State dependency: one level less to solve on a hot route
    col = _fashion_collection(st, collection, who)
    if (body.text is None) == (body.image_id is None):
        raise ApiError(400, "bad_input", "give exactly one of text or image_id")
    check_where_keys(body.where)

    def work() -> list[Any]:
        st.refresh_index(collection, "fashion")  # reload if another process (ingestion, CLI) wrote it
        with st.lock(collection).read():
            if body.text is not None:
                return search(st.lake, collection, text=body.text, where=body.where or None, top=body.top,
                              model=_model(st, col))
            return search(st.lake, collection, image=int(body.image_id), where=body.where or None, top=body.top)

    warm = st.index_loaded(collection, "fashion") and (body.text is None or _model_key(col) in st.fashion_models)
    results = await st.queries.run("fashion-search", work, timeout=st.limits.request_timeout_s, warm=warm)
    query = body.text if body.text is not None else f"image {body.image_id}"
    return {"collection": collection, "query": query, "results": _hits(collection, results)}


@router.post("/collections/{collection}/fashion/search-image", response_model=SearchOut,
             responses=responses(*COMMON, 400, 404, 413, 503), summary="Search looks like an uploaded photo")
async def search_image(
    collection: CollectionName, st: State, who: Viewer, image: Annotated[UploadFile, File()],
    where: Annotated[str | None, Form(max_length=2000, description='JSON filter, e.g. {"season": "Summer"}')] = None,
    top: Annotated[int, Form(ge=1, le=200)] = 24,
) -> dict[str, Any]:
    from visionlake.fashion.search import search

    col = _fashion_collection(st, collection, who)
    filt = parse_where(where)
    pil = await _image(st, image)

    def work() -> list[Any]:
        model = _model(st, col)
        st.refresh_index(collection, "fashion")
        with st.lock(collection).read():
            return search(st.lake, collection, image=pil, where=filt, top=top, model=model)

    results = await run_blocking(work, timeout=st.limits.request_timeout_s)
    return {"collection": collection, "query": image.filename or "photo", "results": _hits(collection, results)}


@router.post("/collections/{collection}/fashion/tag", response_model=TagResult,
             responses=responses(*COMMON, 400, 404, 413, 503),
             summary="Tag a photo with the collection's model, trained heads and colour names")
async def tag(collection: CollectionName, st: State, who: Viewer, image: Annotated[UploadFile, File()]
              ) -> dict[str, Any]:
    from visionlake.analysers.base import DecodedImage, WorkerContext
    from visionlake.fashion.analyser import ColourAnalyser
    from visionlake.fashion.tagger import FashionTagger, load_heads

    col = _fashion_collection(st, collection, who)
    pil = await _image(st, image)

    def work() -> dict[str, Any]:
        tagger = FashionTagger(_model(st, col), heads=load_heads(st.lake.collection_dir(collection) / "heads"))
        _emb, tags = tagger.tag([pil])
        # the same colour answer as ingestion: the collection's trained colour head when it has one
        ctx = WorkerContext(st.lake.root, collection, st.lake.collection_dir(collection))
        res = ColourAnalyser().analyse([DecodedImage(image.filename or "photo", "", pil)], ctx)[0]
        colours = res["colour"]
        if colours is None:
            raise ApiError(400, "bad_input", f"cannot analyse the colours of this photo: {res.get('error')}")
        return {"tags": [t.to_dict() for t in tags[0]], "colour_family": colours["family"],
                "colour_model": colours["family_model"], "colours": colours["colours"]}

    return await run_blocking(work, timeout=st.limits.request_timeout_s)


@router.get("/collections/{collection}/fashion/facets", response_model=list[Facet],
            responses=responses(*COMMON, 404), summary="Metadata fields and their most common values (for filters)")
async def facets(collection: CollectionName, st: State, who: Viewer) -> list[dict[str, Any]]:
    col = find_collection(st, collection, who)

    def work() -> list[dict[str, Any]]:
        counts: dict[str, Counter[str]] = {}
        with st.lake.session() as s:
            for meta in s.scalars(select(Image.meta).where(Image.collection_id == col.id).limit(50_000)):
                for k, v in (meta or {}).items():
                    if k in ("stored", "source", "id") or not isinstance(v, str | int | float):
                        continue
                    counts.setdefault(k, Counter())[str(v)] += 1
        out = []
        for k, c in sorted(counts.items()):
            if 1 < len(c) <= 60:  # a usable filter: more than one value, not an id-like column
                out.append({"field": k, "values": dict(c.most_common())})
        return out

    return await run_blocking(work, timeout=st.limits.request_timeout_s)
