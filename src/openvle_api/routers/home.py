"""GET /: a small page that says what this service is and where to go next (no auth).

Someone who opens the service's address in a browser finds the API documentation, the
operator console and the health check from here instead of a 404. The page is rendered
here with inline styles only: it loads nothing from any host. Its links are relative,
so they stay right behind a reverse proxy that serves the service under a path prefix.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openvle_api.deps import API_PREFIX
from openvle_api.state import app_state
from openvle_core import __version__

router = APIRouter(tags=["home"])

LINKS = (
    ("docs", "API documentation", "Swagger UI: every endpoint, tried out with a token."),
    ("redoc", "API reference", "The same OpenAPI document as one readable page (ReDoc)."),
    ("console/", "Console", "Operations, VMs and events as they change, for operators."),
    ("health/ready", "Readiness", "Database, queue and snapshot store; Proxmox reported."),
    ("openapi.json", "OpenAPI document", "For client generators."),
)
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1d2430}h1{font-size:1.6rem;margin-bottom:.2rem}"
    "dt{margin-top:.8rem;font-weight:600}dd{margin:0}code{background:#eef1f5;"
    "padding:0 .25rem;border-radius:3px}.muted{color:#5b6472}"
)


@router.get("/", include_in_schema=False)
async def home(request: Request) -> HTMLResponse:
    """The landing page (see the module docstring)."""
    name = escape(app_state(request).settings.project_name)
    return HTMLResponse(page(name), headers={"Cache-Control": "no-cache"})


def page(name: str) -> str:
    """The whole HTML document for the project `name` (already escaped)."""
    links = "".join(
        f'<dt><a href="{href}">{title}</a></dt><dd>{text}</dd>' for href, title, text in LINKS
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{name} Proxmox service</title><style>{STYLE}</style></head><body>"
        f"<h1>{name} Proxmox service</h1>"
        f'<p class="muted">version {escape(__version__)}</p>'
        "<p>Virtual labs for teaching: this service clones VM templates on a Proxmox VE "
        "cluster into one set of VMs per participant of an event, keeps them running, "
        "gives each an IP address and removes them when the event ends.</p>"
        f"<p>Its JSON API is under <code>{API_PREFIX}</code>; every request there needs "
        "a bearer token (<code>openvle token create NAME --scope read</code>).</p>"
        f"<dl>{links}</dl></body></html>"
    )
