"""The auth matrix: no token, bad token, and each scope on each endpoint."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from openvle_core.db.enums import TokenScope
from openvle_core.db.types import utcnow
from openvle_core.tokens.service import authenticate, create_token, revoke_token
from openvle_pvesim import Simulator
from tests.api.kit import Api, Backend, open_api

MISSING = "0193a5a0-0000-7000-8000-000000000000"
# (method, path, json body, least scope)
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/v1/nodes", None, "read"),
    ("GET", f"/api/v1/nodes/{MISSING}", None, "read"),
    ("GET", "/api/v1/templates", None, "read"),
    ("POST", "/api/v1/templates", {}, "admin"),
    ("PATCH", f"/api/v1/templates/{MISSING}", {}, "admin"),
    ("DELETE", f"/api/v1/templates/{MISSING}", None, "admin"),
    ("GET", f"/api/v1/templates/{MISSING}", None, "read"),
    ("GET", "/api/v1/vms", None, "read"),
    ("GET", "/api/v1/vms/unmanaged", None, "read"),
    ("GET", f"/api/v1/vms/{MISSING}", None, "read"),
    ("POST", "/api/v1/vms", {}, "admin"),
    *[
        ("POST", f"/api/v1/vms/{MISSING}/{action}", None, "operate")
        for action in ("start", "stop", "shutdown", "restart", "reset", "pause", "resume")
    ],
    ("POST", f"/api/v1/vms/{MISSING}/migrate", {}, "admin"),
    ("DELETE", f"/api/v1/vms/{MISSING}", None, "admin"),
    ("GET", "/api/v1/events", None, "read"),
    ("POST", "/api/v1/events", {}, "admin"),
    ("GET", f"/api/v1/events/{MISSING}", None, "read"),
    ("PATCH", f"/api/v1/events/{MISSING}", {}, "admin"),
    ("DELETE", f"/api/v1/events/{MISSING}", None, "admin"),
    ("POST", f"/api/v1/events/{MISSING}/deploy", None, "admin"),
    ("POST", f"/api/v1/events/{MISSING}/archive", None, "admin"),
    ("POST", f"/api/v1/events/{MISSING}/plan", None, "read"),
    ("GET", "/api/v1/operations", None, "read"),
    ("GET", f"/api/v1/operations/{MISSING}", None, "read"),
    ("GET", f"/api/v1/operations/{MISSING}/events", None, "read"),
    ("GET", f"/api/v1/operations/{MISSING}/vms", None, "read"),
    ("GET", "/api/v1/tokens/current", None, "read"),
    ("GET", "/api/v1/changelog", None, "read"),
    ("GET", "/api/v1/changelog", {"limit": 0}, "read"),
    ("GET", "/api/v1/changelog/stream", None, "stream"),  # read; open-ended, see below
    ("POST", "/api/v1/sync", {"unused": 1}, "admin"),
    ("GET", "/api/v1/system/sync", None, "read"),
    ("GET", "/api/v1/system/proxmox", None, "admin"),
    ("GET", "/metrics", None, "none"),
    ("GET", "/health/live", None, "none"),
    ("GET", "/health/ready", None, "none"),
]
RANK = {"read": 0, "operate": 1, "admin": 2}


async def _call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> int:
    if method == "GET":
        params = body if isinstance(body, dict) else None
        return (await api.client.get(path, params=params, headers=headers)).status_code
    response = await api.client.request(method, path, json=body, headers=headers)
    return response.status_code


@pytest.mark.parametrize(("method", "path", "body", "least"), ENDPOINTS)
async def test_auth_matrix(api: Api, method: str, path: str, body: Any, least: str) -> None:
    if least == "none":  # open endpoints answer without any token
        assert (await api.client.request(method, path)).status_code == 200
        return
    if least == "stream":  # never ends when allowed: test_streams.py reads it with `read`
        assert (await api.client.request(method, path)).status_code == 401
        bad = {"Authorization": "Bearer ovl_not-a-token"}
        assert (await api.client.request(method, path, headers=bad)).status_code == 401
        return
    no_token = await api.client.request(method, path)
    assert no_token.status_code == 401
    assert no_token.headers["content-type"] == "application/problem+json"
    assert no_token.headers["www-authenticate"].startswith("Bearer")
    bad = {"Authorization": "Bearer ovl_not-a-token"}
    assert await _call(api, method, path, body, bad) == 401
    for scope, rank in RANK.items():
        status = await _call(api, method, path, body, api.auth(scope))
        if rank < RANK[least]:
            assert status == 403, (scope, status)
        else:
            assert status not in {401, 403}, (scope, status)


async def test_forbidden_names_the_scope(api: Api) -> None:
    got = await api.client.post("/api/v1/events", json={}, headers=api.auth("operate"))
    assert got.status_code == 403
    assert got.json()["detail"] == "this needs a token with scope 'admin'; this one has 'operate'"


async def test_revoked_and_malformed_tokens_are_refused(backend: Backend, sim: Simulator) -> None:
    async with open_api(backend, sim) as api:
        headers = api.auth("read")
        assert (await api.client.get("/api/v1/nodes", headers=headers)).status_code == 200
        async with api.runtime.sessions() as session, session.begin():
            row = await authenticate(session, api.tokens["read"])
            assert row is not None
            await revoke_token(session, row.id)
        got = await api.client.get("/api/v1/nodes", headers=headers)
        assert got.status_code == 401
        assert "revoked" in got.json()["detail"]
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        assert (await api.client.get("/api/v1/nodes", headers=basic)).status_code == 401


async def test_health_is_open(api: Api) -> None:
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    ready = await api.client.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "queue", "snapshot"}
    assert body["proxmox"]["ok"] is True


async def test_expired_tokens_are_refused(backend: Backend, sim: Simulator) -> None:
    async with open_api(backend, sim) as api:
        async with api.runtime.sessions() as session, session.begin():
            row, plain = await create_token(session, "soon", TokenScope.ADMIN)
            row.expires_at = utcnow() - timedelta(seconds=1)  # as if its time had come
        got = await api.client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {plain}"})
        assert got.status_code == 401


async def test_every_route_is_in_the_matrix(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    routes = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    covered = {(m, p.replace(MISSING, "{id}")) for m, p, _, _ in ENDPOINTS}
    templated = {(m, re.sub(r"\{[a-z_]+\}", "{id}", p)) for m, p in routes}
    assert templated - covered == set()
