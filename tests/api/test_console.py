"""The console's shell and assets as the API serves them, and the token's own view.

Every asset the shell and the scripts name is served from the package; no file of the
console names another host; the Content-Security-Policy allows this host only.
"""

from __future__ import annotations

import re

from openvle_api.console.router import STATIC
from tests.api.kit import Api

IMPORT = re.compile(r"""from\s+"\./([\w-]+\.js)";""")
ASSET = re.compile(r"""(?:src|href)="(/console/static/[^"]+)\"""")
OFF_HOST = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


async def test_every_console_path_gets_the_shell_with_a_same_host_policy(api: Api) -> None:
    for path in ("/console/", "/console/events", "/console/events/x/y?q=1"):
        response = await api.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "connect-src 'self'" in policy
        assert '<main id="main"' in response.text
    moved = await api.client.get("/console")
    assert (moved.status_code, moved.headers["location"]) == (308, "/console/")


async def test_every_named_asset_is_served_and_nothing_names_another_host(api: Api) -> None:
    shell = (STATIC / "index.html").read_text()
    assets = set(ASSET.findall(shell))
    scripts = sorted((STATIC / "js").glob("*.js"))
    for script in scripts:
        assets |= {f"/console/static/js/{name}" for name in IMPORT.findall(script.read_text())}
    assert {f"/console/static/js/{s.name}" for s in scripts} <= assets | {
        "/console/static/js/app.js"
    }
    for asset in sorted(assets):
        response = await api.client.get(asset)
        assert response.status_code == 200, asset
        if asset.endswith(".js"):
            assert response.headers["content-type"].startswith("text/javascript")
    for path in sorted(p for p in STATIC.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        assert OFF_HOST.findall(text.replace("http://www.w3.org/2000/svg", "")) == [], path


async def test_the_console_is_not_in_the_api_document(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]
    assert "/api/v1/tokens/current" in paths


async def test_current_token_says_who_and_what_scope(api: Api) -> None:
    for scope in ("read", "operate", "admin"):
        response = await api.client.get("/api/v1/tokens/current", headers=api.auth(scope))
        assert response.status_code == 200
        body = response.json()
        assert (body["name"], body["scope"]) == (f"test-{scope}", scope)
        assert set(body) == {"id", "name", "scope"}
    assert (await api.client.get("/api/v1/tokens/current")).status_code == 401
