"""GET /system/proxmox and readiness, with Proxmox and the database up or not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx

from openvle_api.app import create_app
from openvle_core.db.session import create_engine, session_factory
from openvle_core.proxmox import ProxmoxClient, build_http_client
from openvle_core.runtime import Runtime
from tests.api.kit import Api


async def test_proxmox_status_from_the_cluster(api: Api) -> None:
    got = await api.client.get("/api/v1/system/proxmox", headers=api.auth("admin"))
    assert got.status_code == 200
    body = got.json()
    assert body["reachable"] is True
    assert body["release"] == "9.1"
    assert body["pool"] == "OpenVLE-VMs"
    assert set(body["missing_privileges"]) >= {"core", "ha", "migration"}
    assert body["missing_privileges"]["core"] == []


def _unreachable(api: Api) -> tuple[Runtime, httpx.AsyncClient]:
    proxmox_settings = api.settings.proxmox.model_copy(
        update={"hostname": "127.0.0.1:9", "connect_timeout": 0.5, "retry_attempts": 1}
    )
    http = build_http_client(proxmox_settings)
    proxmox = ProxmoxClient(http, proxmox_settings)
    return dataclasses.replace(api.runtime, proxmox=proxmox), http


async def test_unreachable_proxmox_is_reported_not_fatal(api: Api) -> None:
    runtime, http = _unreachable(api)
    app = create_app(api.settings, runtime, auth_cache_ttl=0.0)
    transport = httpx.ASGITransport(app=app)
    async with http, httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        got = await client.get("/api/v1/system/proxmox", headers=api.auth("admin"))
        assert got.status_code == 200
        body = got.json()
        assert body["reachable"] is False
        assert body["missing_privileges"] is None
        assert body["error"].startswith("ProxmoxUnavailable")
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["proxmox"]["ok"] is False


async def test_readiness_fails_without_a_database(api: Api, tmp_path: Path) -> None:
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'db.sqlite3'}")
    runtime = dataclasses.replace(api.runtime, sessions=session_factory(broken))
    app = create_app(api.settings, runtime)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            ready = await client.get("/health/ready")
            live = await client.get("/health/live")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["snapshot"]["ok"] is True
        assert live.status_code == 200
    finally:
        await broken.dispose()
