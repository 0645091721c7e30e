"""Each VM of an event deploy as the console sees it: GET /operations/{id}/vms and the
`vm` / `vm_removed` events on the operation's stream; VM counts on events and nodes."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete

from openvle_api.app import create_app
from openvle_core.db.enums import OperationState
from openvle_core.db.models import Event, Operation, Vm
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from tests.api.kit import Api, node, seed, template, vm
from tests.api.server import serve
from tests.api.test_streams import next_event

# VM name -> (its status, its child operation's state or None, the child's journal)
STEPS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "a-waiting": ("cloning", None, {}),
    "b-cloning": ("cloning", "running", {}),
    "c-configuring": ("cloning", "running", {"cloned": True}),
    "d-starting": ("starting", "running", {"cloned": True, "configured": True}),
    "e-running": ("running", "succeeded", {"cloned": True, "ipv4": "10.20.0.9"}),
    "f-failed": ("error", "failed", {}),
}
PHASES = ["queued", "cloning", "configuring", "starting", "running", "failed"]
VMIDS = itertools.count(20_000, 10)


async def deploy_in_flight(api: Api) -> tuple[Event, Operation, dict[str, Vm]]:
    """An event of six VMs, one per phase, and its deploy operation with the children."""
    vmid = next(VMIDS)  # ten apart: no two calls share a vmid (the module shares its DB)
    tpl = template(vmid, f"tpl-{vmid}")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    event = Event(
        slug=secrets.token_hex(3),
        name="Phases",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        participants=6,
    )
    await seed(api.runtime.sessions, tpl, event)
    vms = {
        name: vm(
            tpl.id,
            vmid + i + 1,
            name=f"{event.slug}-{name}",
            status=status,
            event_id=event.id,
            participant=i + 1,
            ipv4="10.20.0.9" if status == "running" else None,
        )
        for i, (name, (status, _, _)) in enumerate(STEPS.items())
    }
    await seed(api.runtime.sessions, *vms.values())
    async with api.runtime.sessions() as session, session.begin():
        repo = OperationRepository(session)
        parent = await repo.create(OperationKind.EVENT_DEPLOY, "event", event.id, total=6)
        for name, (_, state, journal) in STEPS.items():
            if state is None:
                continue
            child = await repo.create(
                OperationKind.EVENT_VM_DEPLOY, "vm", vms[name].id, parent_id=parent.id
            )
            child.state, child.result = state, journal
            if state == "failed":
                child.error_type, child.error_message = "ProxmoxTaskFailed", "can't lock file"
    return event, parent, vms


async def test_each_vm_of_a_deploy_has_its_phase_and_a_failure_its_reason(api: Api) -> None:
    _, op, _ = await deploy_in_flight(api)
    response = await api.client.get(f"/api/v1/operations/{op.id}/vms", headers=api.auth("read"))
    assert response.status_code == 200
    items = response.json()
    assert [item["phase"] for item in items] == PHASES
    failed = items[-1]
    assert (failed["operation_state"], failed["error"]) == (
        "failed",
        "ProxmoxTaskFailed: can't lock file",
    )
    assert [item["error"] for item in items[:-1]] == [None] * 5
    assert items[4]["ipv4"] == "10.20.0.9"
    assert items[0]["operation_id"] is None


async def test_other_operations_have_no_vms_and_unknown_ones_are_404(api: Api) -> None:
    async with api.runtime.sessions() as session, session.begin():
        op = await OperationRepository(session).create(OperationKind.SYNC, "cluster", "x")
    assert (
        await api.client.get(f"/api/v1/operations/{op.id}/vms", headers=api.auth())
    ).json() == []
    missing = await api.client.get("/api/v1/operations/nope/vms", headers=api.auth())
    assert missing.status_code == 404


async def test_the_stream_sends_each_vm_then_only_what_changed(api: Api) -> None:
    _, op, vms = await deploy_in_flight(api)
    app = create_app(api.settings, api.runtime, auth_cache_ttl=0.0, sse_poll=0.02)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        path = f"/api/v1/operations/{op.id}/events"
        async with client.stream("GET", path, headers=api.auth("read")) as response:
            lines = response.aiter_lines()
            first = [await next_event(lines) for _ in range(7)]
            assert [kind for kind, _, _ in first] == ["vm"] * 6 + ["state"]
            assert [data["phase"] for _, data, _ in first[:6]] == PHASES
            async with api.runtime.sessions() as session, session.begin():
                row = await session.get(Vm, vms["d-starting"].id)
                assert row is not None
                row.status, row.ipv4 = "running", "10.20.0.10"
                await session.execute(delete(Vm).where(Vm.id == vms["a-waiting"].id))
            changed = [await next_event(lines) for _ in range(2)]
            assert sorted(kind for kind, _, _ in changed) == ["vm", "vm_removed"]
            by_kind = {kind: data for kind, data, _ in changed}
            assert (by_kind["vm"]["name"], by_kind["vm"]["phase"]) == (
                vms["d-starting"].name,
                "running",
            )
            assert by_kind["vm_removed"] == {"id": vms["a-waiting"].id}
            async with api.runtime.sessions() as session, session.begin():
                repo = OperationRepository(session)
                await repo.finish(await repo.require(op.id), OperationState.SUCCEEDED)
            kind, data, _ = await next_event(lines)
            assert (kind, data["state"]) == ("state", "succeeded")
            assert [line async for line in lines] == []


async def test_events_count_their_vms_by_status_and_nodes_count_ours(api: Api) -> None:
    event, _, _ = await deploy_in_flight(api)
    got = (await api.client.get(f"/api/v1/events/{event.id}", headers=api.auth())).json()
    assert got["vm_counts"] == {"cloning": 3, "starting": 1, "running": 1, "error": 1}
    listed = (await api.client.get("/api/v1/events?limit=500", headers=api.auth())).json()
    assert next(e for e in listed["items"] if e["id"] == event.id)["vm_counts"] == got["vm_counts"]
    name = f"pve-c{secrets.token_hex(2)}"
    await seed(
        api.runtime.sessions, node(name), vm(None, 90_000 + secrets.randbelow(9_000), node=name)
    )
    one = (await api.client.get(f"/api/v1/nodes/{name}", headers=api.auth())).json()
    assert one["vms"] == 1
    nodes = (await api.client.get("/api/v1/nodes?limit=500", headers=api.auth())).json()["items"]
    assert next(n for n in nodes if n["name"] == name)["vms"] == 1
