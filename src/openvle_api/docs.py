"""Swagger UI and ReDoc with their assets served from this process (no CDN).

The JavaScript and CSS come from the `fastapi-offline` package's static files, so the
documentation works on closed campus networks. ReDoc's bundle shows a small logo it
loads from cdn.redoc.ly; the bundle is served with that address pointing at a logo of
our own instead, and Swagger UI's online validator badge is turned off.
"""

from __future__ import annotations

import functools
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
OWN_ASSETS = Path(__file__).parent / "static"
STATIC_PREFIX = "/docs/static"
REDOC_JS = "/docs/assets/redoc.standalone.js"
REDOC_LOGO = "/docs/assets/redoc-logo-mini.svg"
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
CACHE = {"Cache-Control": "public, max-age=86400"}


@functools.cache
def redoc_bundle() -> bytes:
    """ReDoc's bundle with its CDN logo replaced by ours (read once per process)."""
    text = (ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(REDOC_CDN_LOGO, REDOC_LOGO).encode()


def install_docs(app: FastAPI, openapi_url: str, title: str) -> None:
    """Mount the assets and the two documentation pages (/docs, /redoc)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=ASSETS), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title}: Swagger UI",
            swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title}: ReDoc",
            redoc_js_url=REDOC_JS,
            redoc_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(REDOC_JS, include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript", headers=CACHE)

    @app.get(REDOC_LOGO, include_in_schema=False)
    async def redoc_logo() -> Response:
        logo = (OWN_ASSETS / "redoc-logo-mini.svg").read_bytes()
        return Response(logo, media_type="image/svg+xml", headers=CACHE)
