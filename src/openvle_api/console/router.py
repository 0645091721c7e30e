"""Serve the operator console: one HTML shell for every /console/ path, and its assets.

The console is plain HTML, CSS and JavaScript modules in `static/` (no build step, no
third-party script): the browser calls the JSON API with the token the person signed in
with, kept in sessionStorage. The shell is the same for every console path so that a
reload or a bookmark of /console/events/<id> works. The Content-Security-Policy allows
nothing but this host, so even a mistake in a page cannot make it load from elsewhere.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SHELL_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """The console's assets, revalidated on each load (an upgrade shows at once)."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]  # passed through as Starlette declares them
        response.headers.update({"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
        return response


@functools.cache
def shell() -> bytes:
    """index.html, read once per process."""
    return (STATIC / "index.html").read_bytes()


def install_console(app: FastAPI) -> None:
    """Mount /console/static and answer every other /console/ path with the shell."""
    app.mount(f"{PREFIX}/static", ConsoleFiles(directory=STATIC), name="console-static")

    @app.get(PREFIX, include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    @app.get(PREFIX + "/{path:path}", include_in_schema=False)
    async def console_page(path: str) -> Response:
        return Response(shell(), media_type="text/html; charset=utf-8", headers=SHELL_HEADERS)
