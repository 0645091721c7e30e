"""GET /api/v1/system/proxmox carries doctor's Proxmox checks, with the fix commands."""

from __future__ import annotations

from pathlib import Path

import httpx

from openvle_api.app import create_app
from openvle_cli.demo import DemoOptions, demo_settings
from openvle_core.db.enums import TokenScope
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.session import transaction
from openvle_core.handlers import run_operation
from openvle_core.runtime import open_runtime
from openvle_core.tokens.service import create_token
from openvle_pvesim import run_simulator
from openvle_pvesim.seeds import OPENVLE_VM_PRIVS


async def test_system_proxmox_reports_doctor_checks(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    await upgrade_to_head(url)
    async with run_simulator(version="8.4", tls=True, vms=4) as sim:
        sim.cluster.access.add_role("OpenVLE-VMs", OPENVLE_VM_PRIVS)  # no VM.Monitor
        settings = demo_settings(sim, url, DemoOptions())
        async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
            async with transaction(runtime.sessions) as session:
                _, token = await create_token(session, "admin", TokenScope.ADMIN)
            app = create_app(settings, runtime, auth_cache_ttl=0.0)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                got = await client.get(
                    "/api/v1/system/proxmox", headers={"Authorization": f"Bearer {token}"}
                )
    assert got.status_code == 200
    body = got.json()
    assert body["release"] == "8.4"
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["pool"]["status"] == "OK"
    agent = checks["privileges: guest_agent"]
    assert agent["status"] == "FAIL"
    assert agent["fix"][0] == "pveum role modify OpenVLE-VMs --append 1 --privs VM.Monitor"
    assert body["missing_privileges"]["guest_agent"][0]["privileges"] == ["VM.Monitor"]
