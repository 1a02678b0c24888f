"""The API reference pages (``/docs`` Swagger UI, ``/redoc`` ReDoc) served entirely from installed files.

FastAPI's defaults load Swagger UI and ReDoc from a CDN, so offline (or behind a strict proxy) both
pages are blank. The JavaScript and CSS come from the ``fastapi-offline`` package (MIT; it ships the
swagger-ui-dist and redoc bundles, Apache-2.0 and MIT), read from its installed folder, never
fetched; the one image ReDoc would load from its CDN (its logo) is pointed at our favicon. Each
page's inline start-up script is allowed by its SHA-256 hash in the page's Content-Security-Policy,
so no ``'unsafe-inline'`` script is needed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

from visionlake.service.errors import ApiError

ASSET_PREFIX = "/static/docs"
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "application/javascript",
}
_INLINE = re.compile(r"<script>(.*?)</script>", re.S)
#: Images the bundles would fetch from a CDN at run time, and the local file shown instead.
_REMOTE_IMAGES = {b"https://cdn.redoc.ly/redoc/logo-mini.svg": b"/favicon.ico"}
_PATCHED: dict[str, bytes] = {}


def _asset_bytes(folder: Path, name: str) -> bytes:
    """The asset with its run-time CDN image links pointed at this server (read and patched once)."""
    if name not in _PATCHED:
        data = (folder / name).read_bytes()
        for remote, local in _REMOTE_IMAGES.items():
            data = data.replace(remote, local)
        _PATCHED[name] = data
    return _PATCHED[name]


def asset_dir() -> Path | None:
    """Folder of the bundled Swagger UI / ReDoc files, or None when ``fastapi-offline`` is missing."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if all((folder / name).is_file() for name in ASSETS) else None


def page_csp(html: str) -> str:
    """A CSP for one docs page: scripts from this server plus the page's own inline scripts by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _INLINE.findall(html)
    )
    return ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' {hashes}; worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'none'")


def _page(html: HTMLResponse) -> HTMLResponse:
    body = html.body.decode()
    return HTMLResponse(body, headers={"Content-Security-Policy": page_csp(body), "Cache-Control": "no-cache"})


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets under ``/static/docs/``.

    Create the app with ``docs_url=None, redoc_url=None`` so that FastAPI's CDN pages are not mounted.
    """
    folder = asset_dir()
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(f"{ASSET_PREFIX}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if folder is None or name not in ASSETS:
            raise ApiError(404, "not_found", "no such documentation asset (is fastapi-offline installed?)")
        return Response(_asset_bytes(folder, name), media_type=ASSETS[name],
                        headers={"Cache-Control": "max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return _page(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - API reference",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js", swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        ))

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return _page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                                    redoc_js_url=f"{ASSET_PREFIX}/redoc.standalone.js",
                                    redoc_favicon_url="/favicon.ico", with_google_fonts=False))
