"""The event plan's latency: POST /api/v1/events/{id}/plan for a 1,000-VM event.

An embedded-default database (SQLite) with 12 nodes and their storages, two templates,
BENCH_OTHER_VMS (5,000) VMs of other events (a tenth of them still cloning, so the plan
counts pending clones), cloud-init on a /16 (the plan counts free addresses) and an event
of 500 participants x 2 templates. The real app answers over ASGI (no network): the plan
and, as the baseline of the same run, GET /api/v1/events/{id}, alternating for
BENCH_ROUNDS rounds. Target: plan p95 under 200 ms. Prints one JSON line: plan_p50_ms,
plan_p95_ms, get_p50_ms, plan_vs_get, vms, fits.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OTHER_VMS = int(os.environ.get("BENCH_OTHER_VMS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
PARTICIPANTS = 500
GIB = 1 << 30


async def prepare(url: str) -> tuple[str, str]:
    """Migrate and seed; returns (event id, admin token)."""
    from openvle_core.db.enums import TokenScope
    from openvle_core.db.migrate import upgrade_to_head
    from openvle_core.db.models import Event, EventTemplate, Node, Storage, Template, Vm
    from openvle_core.db.session import create_engine, session_factory, transaction
    from openvle_core.tokens.service import create_token

    await upgrade_to_head(url)
    engine = create_engine(url)
    try:
        async with transaction(session_factory(engine)) as session:
            names = [f"pve{i}" for i in range(1, 13)]
            session.add_all(
                Node(name=n, status="online", cpu=0.2, maxcpu=64, mem=64 * GIB, maxmem=512 * GIB)
                for n in names
            )
            for n in names:
                session.add(
                    Storage(
                        storage="ceph",
                        node=n,
                        shared=True,
                        status="available",
                        disk=10 * GIB,
                        maxdisk=100_000 * GIB,
                    )
                )
            templates = [
                Template(
                    vmid=9000,
                    name="debian",
                    node="pve1",
                    cores=2,
                    memory_mb=2048,
                    storages="ceph",
                    disk_mb=32 * 1024,
                ),
                Template(
                    vmid=9001,
                    name="ubuntu",
                    node="pve2",
                    cores=2,
                    memory_mb=4096,
                    storages="ceph",
                    disk_mb=40 * 1024,
                ),
            ]
            start = datetime.now(UTC) + timedelta(days=1)
            event = Event(
                slug="bench",
                name="Bench",
                starts_at=start,
                ends_at=start + timedelta(hours=4),
                participants=PARTICIPANTS,
            )
            session.add_all([*templates, event])
            await session.flush()
            for position, template in enumerate(templates):
                session.add(
                    EventTemplate(event_id=event.id, template_id=template.id, position=position)
                )
            session.add_all(
                Vm(
                    vmid=20_000 + i,
                    name=f"other-{i:05d}",
                    node=names[i % 12],
                    template_id=templates[i % 2].id,
                    status="cloning" if i % 10 == 0 else "running",
                )
                for i in range(OTHER_VMS)
            )
            _, token = await create_token(session, "bench", TokenScope.ADMIN)
        return event.id, token
    finally:
        await engine.dispose()


async def timed(client: Any, method: str, path: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    reply = await client.request(method, path, headers=headers)
    elapsed = time.perf_counter() - started
    assert reply.status_code == 200, reply.text
    return elapsed * 1000


async def main() -> dict[str, Any]:
    import httpx

    from openvle_api.app import create_app
    from openvle_core.handlers import run_operation
    from openvle_core.runtime import open_runtime
    from openvle_core.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'plan.sqlite3'}"
        event_id, token = await prepare(url)
        cloudinit = {
            "enabled": True,
            "network": "10.20.0.0",
            "subnet": "16",
            "gateway": "10.20.0.1",
        }
        settings = load_settings(env_file=None, database={"url": url}, cloudinit=cloudinit)
        headers = {"Authorization": f"Bearer {token}"}
        async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
            app = create_app(settings, runtime)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                plan_path, get_path = (
                    f"/api/v1/events/{event_id}/plan",
                    f"/api/v1/events/{event_id}",
                )
                first = (await client.post(plan_path, headers=headers)).json()
                plans, gets = [], []
                for _ in range(ROUNDS):
                    plans.append(await timed(client, "POST", plan_path, headers))
                    gets.append(await timed(client, "GET", get_path, headers))
    p95 = statistics.quantiles(plans, n=20)[-1]
    return {
        "vms": first["vms"],
        "fits": first["fits"],
        "plan_p50_ms": round(statistics.median(plans), 1),
        "plan_p95_ms": round(p95, 1),
        "get_p50_ms": round(statistics.median(gets), 2),
        "plan_vs_get": round(statistics.median(plans) / statistics.median(gets), 1),
        "target_p95_ms": 200,
        "met": p95 < 200,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
