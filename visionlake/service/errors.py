"""One error shape for every response: ``{"error": {"code": ..., "message": ...}}``.

``visionlake.errors`` classes map to HTTP statuses (BadInput 400, NotFound 404, AlreadyExists 409,
ModelUnavailable 503); anything unexpected becomes a 500 with a generic message and the traceback
goes to the server log, never to the client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from visionlake.errors import AlreadyExists, BadInput, ModelUnavailable, NotFound, VisionLakeError
from visionlake.keyring import KeyProblem
from visionlake.service.access_log import redact_path

log = logging.getLogger("visionlake.service")

STATUS_OF: dict[type[VisionLakeError], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    BadInput: 400,
    ModelUnavailable: 503,
    KeyProblem: 503,  # the server's lake key is missing or wrong: nothing the client can change
}


class ErrorDetail(BaseModel):
    """A stable machine code and a message for people."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An HTTP error with a stable code, raised by routes and dependencies."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _resp(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def status_for(exc: VisionLakeError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]  # type: ignore[index]
    return 400


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the same JSON shape."""

    @app.exception_handler(ApiError)
    async def _api(_req: Request, exc: ApiError) -> JSONResponse:
        return _resp(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(VisionLakeError)
    async def _vl(_req: Request, exc: VisionLakeError) -> JSONResponse:
        return _resp(status_for(exc), exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return _resp(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
        msg = exc.detail if isinstance(exc.detail, str) else "request failed"
        return _resp(exc.status_code, codes.get(exc.status_code, "http_error"), msg,
                     dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", req.method, redact_path(req.url.path))
        return _resp(500, "internal", "internal error; the server log has the details")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error responses an endpoint can give."""
    text = {
        400: "Bad input (unreadable image, no face found, invalid option)",
        401: "Missing or invalid API key",
        403: "The key's role does not allow this",
        404: "Not found, or not visible to this key",
        409: "Already exists",
        413: "Body or image over the limit",
        422: "Request does not match the schema",
        429: "Rate limit exceeded (see Retry-After)",
        503: "Model unavailable or request timed out",
    }
    return {s: {"model": ErrorBody, "description": text.get(s, "Error")} for s in statuses}


#: Errors every authenticated endpoint can return.
COMMON = (401, 422, 429)
