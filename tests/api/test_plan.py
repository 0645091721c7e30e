"""POST /events/{id}/plan (a dry run) and the deploy's capacity check through HTTP: a plan
that fits, one that does not (409 `capacity` with the problems), `?force=true`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from openvle_core.db.models import Node, Storage, Template
from openvle_core.queue import InProcessQueue
from tests.api.kit import Api, event_body, seed

GIB = 1 << 30


async def _cluster(api: Api, *, free_gib: int, vmid: int = 9000) -> str:
    """Two online nodes with `free_gib` free each, a shared storage, a 4 GiB template."""
    async with api.runtime.sessions() as session, session.begin():
        for model in (Node, Storage):
            await session.execute(delete(model))
    nodes = [
        Node(
            name=n, status="online", cpu=0.25, maxcpu=16, mem=(64 - free_gib) * GIB, maxmem=64 * GIB
        )
        for n in ("pve1", "pve2")
    ]
    storages = [
        Storage(storage="ceph", node=n, shared=True, status="available", disk=0, maxdisk=1000 * GIB)
        for n in ("pve1", "pve2")
    ]
    tpl = Template(
        vmid=vmid,
        name="debian-12-template",
        node="pve1",
        cores=2,
        memory_mb=4096,
        storages="ceph",
        disk_mb=8192,
    )
    await seed(api.runtime.sessions, *nodes, *storages, tpl)
    return tpl.id


async def _event(api: Api, template_id: str, slug: str, participants: int) -> str:
    body = event_body([template_id], slug=slug, participants=participants)
    created = await api.client.post("/api/v1/events", json=body, headers=api.auth())
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _drop_templates(api: Api) -> None:
    async with api.runtime.sessions() as session, session.begin():
        await session.execute(delete(Template))


async def test_a_plan_that_fits_shows_where_the_vms_go(api: Api) -> None:
    tpl = await _cluster(api, free_gib=60)
    event_id = await _event(api, tpl, "plan01", participants=10)
    reply = await api.client.post(f"/api/v1/events/{event_id}/plan", headers=api.auth("read"))
    assert reply.status_code == 200, reply.text
    plan = reply.json()
    assert plan["fits"] is True
    assert plan["problems"] == []
    assert plan["vms"] == 10
    assert sum(n["new_vms"] for n in plan["nodes"]) == 10
    for n in plan["nodes"]:
        assert n["memory_free_mb_before"] == 60 * 1024
        assert n["memory_free_mb_after"] == 60 * 1024 - 4096 * n["new_vms"]
        assert n["cpu_free_after"] == n["cpu_free_before"] - 2 * n["new_vms"]
    assert plan["addresses"] is None  # cloud-init off
    assert plan["estimated_duration_s"] > 0
    await _drop_event_and_templates(api, event_id)


async def test_a_plan_that_does_not_fit_refuses_the_deploy_unless_forced(api: Api) -> None:
    tpl = await _cluster(api, free_gib=8)  # per node: 8 GiB x 1.5 promise 3 VMs of 4 GiB
    event_id = await _event(api, tpl, "plan02", participants=10)
    plan = (await api.client.post(f"/api/v1/events/{event_id}/plan", headers=api.auth())).json()
    assert plan["fits"] is False
    assert sum(n["new_vms"] for n in plan["nodes"]) == 6
    assert plan["problems"][0].startswith("4 VM(s) of debian-12-template fit on no node")

    refused = await api.client.post(f"/api/v1/events/{event_id}/deploy", headers=api.auth())
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == "urn:openvle:problem:capacity"
    assert problem["problems"] == plan["problems"]
    event = (await api.client.get(f"/api/v1/events/{event_id}", headers=api.auth())).json()
    assert event["status"] == "scheduled"  # nothing changed

    forced = await api.client.post(
        f"/api/v1/events/{event_id}/deploy", params={"force": "true"}, headers=api.auth()
    )
    assert forced.status_code == 202, forced.text
    if isinstance(api.runtime.queue, InProcessQueue):  # let it end before the module does
        await _finished(api, forced.json()["id"])


async def test_a_plan_needs_read_and_names_a_missing_event(api: Api) -> None:
    missing = await api.client.post("/api/v1/events/nope/plan", headers=api.auth("read"))
    assert missing.status_code == 404
    anonymous = await api.client.post("/api/v1/events/nope/plan")
    assert anonymous.status_code == 401


async def _drop_event_and_templates(api: Api, event_id: str) -> None:
    deleted = await api.client.delete(f"/api/v1/events/{event_id}", headers=api.auth())
    assert deleted.status_code == 204
    await _drop_templates(api)


async def _finished(api: Api, op_id: str) -> dict[str, object]:
    """The operation once it ended (bounded by the test timeout)."""
    while True:
        op = (await api.client.get(f"/api/v1/operations/{op_id}", headers=api.auth())).json()
        if op["state"] in {"succeeded", "failed"}:
            return dict(op)
        await asyncio.sleep(0.05)


async def test_an_event_opened_while_running_that_does_not_fit_waits_with_its_reason(
    api: Api,
) -> None:
    tpl = await _cluster(api, free_gib=1, vmid=9001)  # 1 GiB x 1.5 covers no 4 GiB VM
    start = datetime.now(UTC) - timedelta(minutes=5)
    body = event_body([tpl], slug="plan03", participants=2)
    body |= {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}
    created = await api.client.post("/api/v1/events", json=body, headers=api.auth())
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["status"] == "scheduled"
    assert event["deploy_operation_id"] is None
    assert "2 VM(s) of debian-12-template fit on no node" in event["status_reason"]
