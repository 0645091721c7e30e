"""Snapshots over HTTP: list with `current`, create, rollback, delete, locks and errors."""

from __future__ import annotations

import asyncio

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.kit import ADMIN_TOKEN, MakeSim, pve
from tests.pvesim.modelkit import error, ok, run

BASE = "/nodes/pve3/qemu/202"


async def test_snapshot_rollback_and_delete(admin: httpx.AsyncClient) -> None:
    done = await run(admin, await admin.post(f"{BASE}/snapshot", data={"snapname": "before"}))
    assert done["type"] == "qmsnapshot"
    assert done["exitstatus"] == "OK"
    await ok(await admin.put(f"{BASE}/config", data={"cores": 8, "scsi1": "ceph:1"}))
    listed = await ok(await admin.get(f"{BASE}/snapshot"))
    assert [s["name"] for s in listed] == ["before", "current"]
    assert listed[1]["parent"] == "before"
    assert listed[1]["description"] == "You are here!"
    again = await run(admin, await admin.post(f"{BASE}/snapshot", data={"snapname": "before"}))
    assert again["exitstatus"] == "snapshot name 'before' already used"
    back = await run(admin, await admin.post(f"{BASE}/snapshot/before/rollback"))
    assert back["type"] == "qmrollback"
    config = await ok(await admin.get(f"{BASE}/config"))
    assert config["cores"] == 2
    assert "scsi1" not in config
    assert config["parent"] == "before"
    gone = await run(admin, await admin.delete(f"{BASE}/snapshot/before"))
    assert gone["type"] == "qmdelsnapshot"
    assert [s["name"] for s in await ok(await admin.get(f"{BASE}/snapshot"))] == ["current"]
    assert "parent" not in await ok(await admin.get(f"{BASE}/config"))
    missing = await run(admin, await admin.delete(f"{BASE}/snapshot/before"))
    assert missing["exitstatus"] == "snapshot 'before' does not exist"


async def test_reserved_names_and_template_refusal(admin: httpx.AsyncClient) -> None:
    reserved = await admin.post(f"{BASE}/snapshot", data={"snapname": "current"})
    assert error(reserved) == "unable to use snapshot name 'current' (reserved name)"
    await run(admin, await admin.post(f"{BASE}/snapshot", data={"snapname": "s1"}))
    refused = await admin.post(f"{BASE}/template")
    assert error(refused) == "unable to create template, because VM contains snapshots"


async def test_the_config_is_locked_while_a_snapshot_is_taken(make_sim: MakeSim) -> None:
    async with make_sim() as sim, pve(sim, ADMIN_TOKEN) as admin:
        sim.cluster.tasks.gate.clear()
        upid = await ok(await admin.post(f"{BASE}/snapshot", data={"snapname": "sx"}))
        await _until_locked(sim)
        assert (await ok(await admin.get(f"{BASE}/config")))["lock"] == "snapshot"
        refused = await admin.put(f"{BASE}/config", data={"cores": 4})
        assert error(refused) == "VM is locked (snapshot)"
        sim.cluster.tasks.gate.set()
        await sim.cluster.tasks.wait(upid)
        assert "lock" not in await ok(await admin.get(f"{BASE}/config"))


async def _until_locked(sim: Simulator) -> None:
    for _ in range(200):
        if "lock" in sim.cluster.vms[202].config:
            return
        await asyncio.sleep(0.005)


async def test_ci_token_may_not_snapshot_a_foreign_vm(ci: httpx.AsyncClient) -> None:
    refused = await ci.post(f"{BASE}/snapshot", data={"snapname": "xx"})
    assert error(refused, 403) == "Permission check failed (/vms/202, VM.Snapshot)"
