"""The audit log of biometric operations (identify, verify, enroll, forget), readable by admins.

A scoped admin sees only its collections' entries; entries without a collection (1:1 verify) are
lake-wide and only unscoped admins see them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from visionlake.service.deps import Admin, State
from visionlake.service.errors import COMMON, responses
from visionlake.service.limits import run_blocking
from visionlake.service.schemas import AuditEntryOut

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=list[AuditEntryOut], responses=responses(*COMMON, 403),
            summary="Recent audit entries: who, when, collection, result ids (never pixels or templates)")
async def audit_log(
    st: State, who: Admin,
    action: Literal["identify", "verify", "enroll", "forget"] | None = None,
    collection: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    from visionlake.faces.gallery import audit_log as read_log

    if collection is not None and not who.can_see(collection):
        return []

    def work() -> list[dict[str, Any]]:
        st.audit.flush()  # identify entries are written in batches: show every call made so far
        if who.unscoped or collection is not None:
            return read_log(st.lake, action=action, collection=collection, limit=limit)
        out: list[dict[str, Any]] = []
        for c in who.collections:
            out += read_log(st.lake, action=action, collection=c, limit=limit)
        return sorted(out, key=lambda e: e["id"], reverse=True)[:limit]

    return await run_blocking(work, timeout=st.limits.request_timeout_s)
