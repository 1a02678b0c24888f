"""FastAPI dependencies: who is calling (API key), may they (role), and which collection.

Keys come in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A collection outside a key's
scope answers exactly like a collection that does not exist.

The dependencies are ``async``: FastAPI runs plain ``def`` dependencies in the thread pool, which cost
a thread hop each (four per request here). The common case -- a key checked a moment ago -- is a
dictionary lookup; only the first check of a key (scrypt) and the periodic re-read go to a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import FileResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from visionlake.catalog.models import Collection
from visionlake.service.auth import Principal
from visionlake.service.errors import ApiError
from visionlake.service.state import ServiceState

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def service_state(request: Request) -> ServiceState:
    """The app's :class:`ServiceState` (what the ``State`` dependency gives, without a dependency)."""
    return request.app.state.service


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
KeyHeader = Annotated[str | None, Depends(_header)]


async def principal(request: Request, bearer: Bearer, header: KeyHeader) -> Principal:
    """The caller's key, checked and rate limited; 401 without a valid key, 429 over the rate."""
    return await _authenticate(request, bearer, header)


async def _authenticate(request: Request, bearer: HTTPAuthorizationCredentials | None, header: str | None
                        ) -> Principal:
    """:func:`principal`, once per request: a route that needs two of the dependencies built on it
    (``Caller`` and ``Viewer``, say) checks the key and takes a rate token only once."""
    done = getattr(request.state, "principal", None)
    if done is not None:
        return done
    st: ServiceState = request.app.state.service
    presented = header or (bearer.credentials if bearer else None)
    if not presented:
        raise ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                       headers={"WWW-Authenticate": "Bearer"})
    client = request.client.host if request.client else "unknown"
    assert st.verifier is not None
    who = st.verifier.cached(presented)
    if who is None:
        who = await _check_key(st, presented)
    if who is None:
        # guessing is rate limited per address (each guess costs a scrypt)
        st.limiter.check(f"ip:{client}", st.limits.auth_failures_per_s, st.limits.auth_failure_burst)
        raise ApiError(401, "unauthorized", "the API key is invalid or revoked",
                       headers={"WWW-Authenticate": "Bearer"})
    if is_asset_read(request):
        # thumbnails and face crops: a page of 100 results or 100 groups reads hundreds of small files
        # at once; they get their own, larger budget so that they neither fail nor use up the API's
        st.limiter.check(f"assets:{who.key_id}", st.limits.asset_rate_per_s, st.limits.asset_burst)
    else:
        rate = who.rate_per_s or st.limits.rate_per_s
        st.limiter.check(f"key:{who.key_id}", rate, max(st.limits.burst, rate))
    request.state.principal = who
    return who


#: Path endings of the small derived files a page shows many of (GET only).
ASSET_SUFFIXES = ("/thumbnail", "/crop")


def is_asset_read(request: Request) -> bool:
    """Whether the request reads a thumbnail or a face crop (rate limited on a separate budget)."""
    return request.method in ("GET", "HEAD") and request.url.path.endswith(ASSET_SUFFIXES)


async def _check_key(st: ServiceState, presented: str) -> Principal | None:
    """One check of a key at a time, shared by every request that presents it meanwhile.

    A checked key is trusted for ``PRINCIPAL_TTL_S`` (2 s); when that runs out, every request in
    flight with the key finds it stale at once. Each used to re-read the key's row in its own pool
    thread: 50 concurrent clients made a herd of 50 catalog reads fighting over the GIL every 2 s,
    a ~150 ms stall of the whole service that was most of ``bench api``'s p99. Now the first request
    starts the check and the others await the same result: the same answer (a revoked key is refused
    by all of them), one catalog read. ``shield``: a caller that goes away does not cancel the check
    the others wait for.
    """
    assert st.verifier is not None
    digest = hashlib.sha256(presented.encode()).digest()
    task = st.key_checks.get(digest)
    if task is None:
        task = asyncio.ensure_future(run_in_threadpool(st.verifier.verify, presented))
        st.key_checks[digest] = task
        task.add_done_callback(lambda _t: st.key_checks.pop(digest, None))
    return await asyncio.shield(task)


Caller = Annotated[Principal, Depends(principal)]


def require(role: str) -> Callable[..., Principal]:
    """Dependency: the caller must hold ``role`` or a higher one (403 otherwise).

    It checks the key itself (the same :func:`_authenticate` as :data:`Caller`, with the same two
    security schemes) rather than depending on ``Caller``: one level less of dependency solving on
    every request, which FastAPI charges ~0.1 ms of CPU for."""

    async def _check(request: Request, bearer: Bearer, header: KeyHeader) -> Principal:
        who = await _authenticate(request, bearer, header)
        if not who.has_role(role):
            raise ApiError(403, "forbidden", f"this needs the {role} role; the key has {who.role}")
        return who

    return _check


Viewer = Annotated[Principal, Depends(require("viewer"))]


async def _viewer_direct(request: Request) -> Principal:
    """:data:`Viewer` with the two key schemes called directly instead of solved as dependencies."""
    who = await _authenticate(request, await _bearer(request), await _header(request))
    if not who.has_role("viewer"):
        raise ApiError(403, "forbidden", f"this needs the viewer role; the key has {who.role}")
    return who


#: :data:`Viewer` for the two hottest routes (identify by embedding, fashion search): the same key
#: check, rate limit and role, with the security schemes read inside one dependency rather than
#: solved as two more: ~160 fewer Python calls (~10%) per request. A route using it declares the
#: schemes with ``openapi_extra=HOT_SECURITY`` so that /docs shows the same security as ``Viewer``.
HotViewer = Annotated[Principal, Depends(_viewer_direct)]
HOT_SECURITY: dict[str, Any] = {"security": [{_bearer.scheme_name: []}, {_header.scheme_name: []}]}
Editor = Annotated[Principal, Depends(require("editor"))]
Admin = Annotated[Principal, Depends(require("admin"))]


async def require_unscoped_admin(who: Admin) -> Principal:
    """Key management needs an admin key valid for every collection (a scoped admin could otherwise
    mint itself a wider key)."""
    if not who.unscoped:
        raise ApiError(403, "forbidden", "managing keys and lake-wide settings needs an unscoped admin key")
    return who


LakeAdmin = Annotated[Principal, Depends(require_unscoped_admin)]


def find_collection(st: ServiceState, name: str, who: Principal) -> Collection:
    """The collection if it exists and the key may see it; otherwise the same 404 either way."""
    if who.can_see(name):
        col = st.cached_collection(name)
        if col is not None:
            return col
    raise ApiError(404, "not_found", f"no collection named {name!r}")


CollectionName = Annotated[str, Path(min_length=1, max_length=200, description="Collection name")]


def lake_file(st: ServiceState, rel: str | None, missing: str) -> FileResponse:
    """Serve a derived file (thumbnail, crop) by its lake-relative path, never one outside the lake.

    ``rel`` is None when the row does not exist or belongs to another collection: both answer 404.
    """
    path = (st.lake.root / rel).resolve() if rel else None
    if path is None or not path.is_file() or st.lake.root not in path.parents:
        raise ApiError(404, "not_found", missing)
    return FileResponse(path, media_type="image/jpeg" if path.suffix in (".jpg", ".jpeg") else None)


def visible(st: ServiceState, who: Principal, collection: str) -> Any:
    return find_collection(st, collection, who)


def _id_param(description: str) -> Any:
    return Annotated[int, Path(ge=0, le=2**53, description=description)]


ImageId = _id_param("Image id")
JobId = _id_param("Job id")
GroupId = _id_param("Face group id")
FaceId = _id_param("Face id")
PersonId = _id_param("Person id (names never go in URLs)")
KeyId = _id_param("API key id")
