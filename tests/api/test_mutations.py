"""Mutations through HTTP: 202 with the operation and Location, and their refusals."""

from __future__ import annotations

import pytest

from openvle_core.db.enums import OperationState
from openvle_core.operations.repository import OperationRepository
from openvle_core.queue import InProcessQueue
from tests.api.kit import Api, node, seed, template, vm

POWER = ["start", "stop", "shutdown", "restart", "reset", "pause", "resume"]


async def _hold(api: Api, target_type: str, target_id: str, kind: str) -> str:
    """An in-flight operation holding the target, as a busy worker would have."""
    async with api.runtime.sessions() as session, session.begin():
        op = await OperationRepository(session).create(kind, target_type, target_id)
    return op.id


async def test_clone_answers_202_with_the_operation(api: Api) -> None:
    tpl = template(9500, "tpl-9500")
    await seed(api.runtime.sessions, tpl)
    got = await api.client.post(
        "/api/v1/vms", json={"template_id": tpl.id, "name": "Lab 1"}, headers=api.auth()
    )
    assert got.status_code == 202
    op = got.json()
    assert op["kind"] == "vm.clone"
    assert got.headers["location"] == f"/api/v1/operations/{op['id']}"
    followed = await api.client.get(got.headers["location"], headers=api.auth("read"))
    assert followed.json()["id"] == op["id"]
    made = await api.client.get(f"/api/v1/vms/{op['target_id']}", headers=api.auth("read"))
    assert made.json()["name"] == "lab-1"
    assert made.json()["template_id"] == tpl.id


async def test_clone_refusals(api: Api) -> None:
    got = await api.client.post("/api/v1/vms", json={"template_id": "nope"}, headers=api.auth())
    assert got.status_code == 404
    got = await api.client.post("/api/v1/vms", json={}, headers=api.auth())
    assert got.status_code == 422
    assert got.json()["errors"][0]["loc"] == ["body", "template_id"]
    tpl = template(9501, "tpl-9501")
    await seed(api.runtime.sessions, tpl)
    got = await api.client.post(
        "/api/v1/vms", json={"template_id": tpl.id, "name": "!!!"}, headers=api.auth()
    )
    assert got.status_code == 422
    assert "no usable VM name" in got.json()["detail"]


@pytest.mark.parametrize("action", POWER)
async def test_power_actions(api: Api, action: str) -> None:
    one = vm(None, 1600 + POWER.index(action), status="stopped")
    await seed(api.runtime.sessions, one)
    got = await api.client.post(f"/api/v1/vms/{one.id}/{action}", headers=api.auth("operate"))
    assert got.status_code == 202
    body = got.json()
    assert (body["kind"], body["target_id"]) == ("vm.power", one.id)
    missing = await api.client.post(f"/api/v1/vms/nope/{action}", headers=api.auth("operate"))
    assert missing.status_code == 404


async def test_busy_vm_is_a_conflict_naming_the_holder(api: Api) -> None:
    one = vm(None, 1700)
    await seed(api.runtime.sessions, one)
    holder = await _hold(api, "vm", one.id, "vm.migrate")
    got = await api.client.delete(f"/api/v1/vms/{one.id}", headers=api.auth())
    assert got.status_code == 409
    assert got.json()["type"] == "urn:openvle:problem:target_busy"
    assert got.json()["operation_id"] == holder


async def test_migrate_and_delete(api: Api) -> None:
    uncloned = vm(None, 1701, node="pve1")
    uncloned.vmid = None
    placed = vm(None, 1702, node="pve1")
    await seed(api.runtime.sessions, uncloned, placed, node("pve1"), node("pve2"))
    url = f"/api/v1/vms/{uncloned.id}/migrate"
    got = await api.client.post(url, json={"target_node": "pve2"}, headers=api.auth())
    assert got.status_code == 409
    url = f"/api/v1/vms/{placed.id}/migrate"
    got = await api.client.post(url, json={"target_node": "pve1"}, headers=api.auth())
    assert got.status_code == 409
    assert got.json()["detail"] == f"VM {placed.name} is already on pve1"
    got = await api.client.post(url, json={"node": "pve2"}, headers=api.auth())
    assert got.status_code == 422
    other = vm(None, 1703)
    await seed(api.runtime.sessions, other)
    got = await api.client.delete(f"/api/v1/vms/{other.id}", headers=api.auth())
    assert got.status_code == 202
    assert got.json()["kind"] == "vm.delete"


async def test_templates(api: Api) -> None:
    tpl = template(9502, "tpl-9502")
    await seed(api.runtime.sessions, tpl)
    await seed(api.runtime.sessions, vm(tpl.id, 1704))
    got = await api.client.delete(f"/api/v1/templates/{tpl.id}", headers=api.auth())
    assert got.status_code == 409
    assert got.json()["detail"] == "template tpl-9502 is still used by 1 VMs"
    both = {"source_vmid": 9000, "from_template_id": tpl.id}
    got = await api.client.post("/api/v1/templates", json=both, headers=api.auth())
    assert got.status_code == 422
    got = await api.client.patch(f"/api/v1/templates/{tpl.id}", json={}, headers=api.auth())
    assert got.status_code == 422
    got = await api.client.patch(
        f"/api/v1/templates/{tpl.id}", json={"cores": 4}, headers=api.auth()
    )
    assert got.status_code == 202
    assert got.json()["kind"] == "template.update"
    got = await api.client.post("/api/v1/templates", json={"source_vmid": 4242}, headers=api.auth())
    assert got.status_code == 404  # not in the pool (tests/api/test_template_pool.py)
    assert "VM 4242" in got.json()["detail"]


async def test_sync_request_and_busy(api: Api) -> None:
    async with api.runtime.sessions() as session, session.begin():
        repo = OperationRepository(session)
        earlier = await repo.holder("cluster", "sync")  # e.g. queued by the auth matrix
        if earlier is not None:
            await repo.finish(earlier, OperationState.SUCCEEDED)
    got = await api.client.post("/api/v1/sync", headers=api.auth())
    assert got.status_code == 202
    assert got.json()["kind"] == "sync"
    assert got.headers["location"] == f"/api/v1/operations/{got.json()['id']}"
    if isinstance(api.runtime.queue, InProcessQueue):
        await api.runtime.queue.join()  # the embedded queue runs it: let it finish
    async with api.runtime.sessions() as session:
        held = await OperationRepository(session).holder("cluster", "sync")
    if held is None:
        await _hold(api, "cluster", "sync", "sync")
    got = await api.client.post("/api/v1/sync", headers=api.auth())
    assert got.status_code == 409
    assert got.json()["type"] == "urn:openvle:problem:target_busy"
