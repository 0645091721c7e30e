"""The identity of VMs in the API: `identity` on every VM, a filter on it, and the
pool's VMs that are not ours (GET /vms/unmanaged), from the last sync."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openvle_core.db.enums import GuestIdentity
from openvle_pvesim import Simulator
from openvle_pvesim.cluster import VM
from tests.api.kit import Api, Backend, open_api, seed, sync, vm
from tests.sync.kit import evidence_of

POOL = "OpenVLE-VMs"


@pytest.fixture(scope="module")
async def api(backend: Backend, sim: Simulator) -> AsyncIterator[Api]:
    """The module's app, with a snapshot of its own (this module runs a sync)."""
    async with open_api(backend, sim, mongodb_database="openvle_identity") as opened:
        yield opened


def pool_vm(api: Api, vmid: int, name: str) -> None:
    config = dict(api.sim.cluster.vms[9000].config, name=name)
    config.pop("template")
    api.sim.cluster.vms[vmid] = VM(vmid, "pve1", config)
    api.sim.cluster.set_pool(vmid, POOL)


async def test_unmanaged_guests_and_the_identity_of_vms(api: Api) -> None:
    for vmid, name in [(700, "ours"), (701, "teacher-golden-image"), (702, "by-hand")]:
        pool_vm(api, vmid, name)
    api.sim.cluster.tick()
    ours = vm(None, 700, name="ours", status="stopped", **evidence_of(api.sim, 700))
    gone = vm(None, 701, name="lab-01", status="missing", identity=GuestIdentity.FOREIGN.value)
    await seed(api.runtime.sessions, ours, gone)
    await sync(api)

    page = (await api.client.get("/api/v1/vms/unmanaged", headers=api.auth("read"))).json()
    listed = [(g["vmid"], g["name"], g["vm_id"]) for g in page["items"]]
    assert listed == [(701, "teacher-golden-image", gone.id), (702, "by-hand", None)]
    first = await api.client.get("/api/v1/vms/unmanaged?limit=1", headers=api.auth("read"))
    cursor = first.json()["next_cursor"]
    rest = await api.client.get(
        "/api/v1/vms/unmanaged", params={"cursor": cursor}, headers=api.auth("read")
    )
    assert [g["vmid"] for g in rest.json()["items"]] == [702]
    foreign = await api.client.get(
        "/api/v1/vms", params={"identity": "foreign"}, headers=api.auth("read")
    )
    assert [(v["id"], v["identity"]) for v in foreign.json()["items"]] == [(gone.id, "foreign")]
    one = await api.client.get(f"/api/v1/vms/{ours.id}", headers=api.auth("read"))
    assert one.json()["identity"] == "ours"
