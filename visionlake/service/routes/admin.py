"""Lake-wide administration: API keys, the retention setting and purge, and who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visionlake.service.auth import create_key, list_keys, revoke_key
from visionlake.service.deps import Caller, KeyId, LakeAdmin, State
from visionlake.service.errors import COMMON, ApiError, responses
from visionlake.service.limits import run_blocking
from visionlake.service.retention import get_retention_days, purge, set_retention_days
from visionlake.service.schemas import KeyCreate, KeyCreated, KeyOut, Me, PurgeReport, Retention

router = APIRouter(tags=["admin"])


@router.get("/me", response_model=Me, responses=responses(*COMMON), summary="The calling key's role and scope")
async def me(who: Caller) -> dict[str, Any]:
    return {"key_id": who.key_id, "name": who.name, "role": who.role, "collections": list(who.collections)}


@router.get("/admin/keys", response_model=list[KeyOut], responses=responses(*COMMON, 403), summary="List API keys")
async def keys(st: State, who: LakeAdmin) -> list[dict[str, Any]]:
    return await run_blocking(list_keys, st.lake, timeout=st.limits.request_timeout_s)


@router.post("/admin/keys", response_model=KeyCreated, status_code=201, responses=responses(*COMMON, 400, 403, 404),
             summary="Create an API key (the key is in this response only)")
async def new_key(body: KeyCreate, st: State, who: LakeAdmin) -> dict[str, Any]:
    return await run_blocking(create_key, st.lake, body.role, body.collections, body.name, body.rate_per_s,
                              timeout=st.limits.request_timeout_s)


@router.delete("/admin/keys/{key_id}", response_model=KeyOut, responses=responses(*COMMON, 403, 404),
               summary="Revoke an API key (effective on the next request)")
async def revoke(key_id: KeyId, st: State, who: LakeAdmin) -> dict[str, Any]:
    if key_id == who.key_id:
        raise ApiError(400, "bad_input", "a key cannot revoke itself; use another admin key")
    out = await run_blocking(revoke_key, st.lake, key_id, timeout=st.limits.request_timeout_s)
    assert st.verifier is not None
    st.verifier.invalidate(key_id)  # effective on this server's next request, not after the cache time
    return out


@router.get("/admin/retention", response_model=Retention, responses=responses(*COMMON, 403),
            summary="Days after which probe photos and unmatched face crops are deleted")
async def retention(st: State, who: LakeAdmin) -> dict[str, Any]:
    return {"days": get_retention_days(st.lake)}


@router.put("/admin/retention", response_model=Retention, responses=responses(*COMMON, 400, 403),
            summary="Set the retention period (null keeps everything)")
async def set_retention(body: Retention, st: State, who: LakeAdmin) -> dict[str, Any]:
    return {"days": set_retention_days(st.lake, body.days)}


@router.post("/admin/retention/purge", response_model=PurgeReport, responses=responses(*COMMON, 400, 403),
             summary="Delete probe photos and unmatched face crops older than the retention period now")
async def purge_now(st: State, who: LakeAdmin) -> dict[str, Any]:
    days = get_retention_days(st.lake)
    if days is None:
        raise ApiError(400, "bad_input", "no retention period is set; PUT /admin/retention first")
    return await run_blocking(purge, st.lake, days, timeout=st.limits.request_timeout_s)
