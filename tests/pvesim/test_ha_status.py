"""GET /cluster/ha/status/current over HTTP (pve-ha-manager API2/HA/Status.pm)."""

from __future__ import annotations

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.kit import pve
from tests.pvesim.modelkit import error, ok, run


async def test_without_resources_only_quorum_and_fencing_show(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    entries = await ok(await ci.get("/cluster/ha/status/current"))
    assert entries[0] == {
        "id": "quorum",
        "type": "quorum",
        "node": "pve1",
        "status": "OK",
        "quorate": 1,
    }
    kinds = [e["type"] for e in entries]
    assert kinds == (["quorum", "fencing"] if sim.version == "9.1" else ["quorum"])
    if sim.version == "9.1":
        assert entries[1]["armed-state"] == "standby"


async def test_a_resource_brings_master_lrms_and_its_service(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.cluster.autotick = False
    clone = await ci.post("/nodes/pve1/qemu/9000/clone", data={"newid": 360, "pool": "OpenVLE-VMs"})
    assert (await run(ci, clone))["exitstatus"] == "OK"
    await ok(await ci.post("/cluster/ha/resources", data={"sid": "vm:360", "max_restart": 2}))
    entries = {e["id"]: e for e in await ok(await ci.get("/cluster/ha/status/current"))}
    service = entries["service:vm:360"]
    assert (service["crm_state"], service["request_state"]) == ("stopped", "started")
    assert service["state"] == "starting"  # requested started, not yet running
    assert service["status"] == "vm:360 (pve1, starting)"
    assert service["max_restart"] == 2
    assert entries["master"]["status"].startswith("pve1 (active, ")
    assert {"lrm:pve1", "lrm:pve2", "lrm:pve3"} <= set(entries)
    await sim.cluster.ha_round()
    await sim.cluster.tasks.drain()
    await sim.cluster.ha_round()
    entries = {e["id"]: e for e in await ok(await ci.get("/cluster/ha/status/current"))}
    assert entries["service:vm:360"]["state"] == "started"
    assert entries["lrm:pve1"]["status"].startswith("pve1 (active, ")
    assert entries["lrm:pve2"]["status"].startswith("pve2 (idle, ")
    if sim.version == "9.1":
        assert "watchdog active" in entries["lrm:pve1"]["status"]
        assert entries["fencing"]["armed-state"] == "armed"


async def test_reading_the_status_needs_sys_audit_on_root(sim: Simulator) -> None:
    sim.cluster.access.add_token("auditor@pve!tk", "s3cret", privsep=False)
    async with pve(
        sim, token=None, headers={"Authorization": "PVEAPIToken=auditor@pve!tk=s3cret"}
    ) as c:
        denied = await c.get("/cluster/ha/status/current")
    assert error(denied, 403) == "Permission check failed (/, Sys.Audit)"
