"""Cloning over HTTP: tasks, locks, the nextid race, storage locks, pools and the stats lag."""

from __future__ import annotations

import asyncio
import re

import httpx

from openvle_pvesim import Simulator
from openvle_pvesim.tasks import UPID_RE
from tests.pvesim.kit import ADMIN_TOKEN, MakeSim, pve
from tests.pvesim.modelkit import error, ok, run, task_log, wait_task

POOL = "OpenVLE-VMs"


async def clone(
    client: httpx.AsyncClient, newid: int, vmid: int = 9000, node: str = "pve1", **params: object
) -> httpx.Response:
    data = {"newid": newid, "pool": POOL, **params}
    return await client.post(f"/nodes/{node}/qemu/{vmid}/clone", data=data)


async def test_linked_clone_task_upid_status_and_log(ci: httpx.AsyncClient) -> None:
    upid = await ok(await clone(ci, 120, name="lab-01"))
    assert UPID_RE.match(upid)
    assert upid.endswith(":qmclone:9000:openvle@pve!ci:")
    status = await wait_task(ci, upid)
    assert status["exitstatus"] == "OK"
    assert status["user"] == "openvle@pve"
    assert status["tokenid"] == "ci"
    assert "endtime" not in status
    log = await task_log(ci, upid)
    assert log[0] == "create linked clone of drive scsi0 (ceph:base-9000-disk-0)"
    assert log[-1] == "TASK OK"
    config = await ok(await ci.get("/nodes/pve1/qemu/120/config"))
    assert config["scsi0"].startswith("ceph:base-9000-disk-0/vm-120-disk-")
    assert "template" not in config
    assert "lock" not in config


async def test_clone_gets_new_uuid_and_macs_and_keeps_smbios_fields(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    source = sim.cluster.vms[9000].config
    source["smbios1"] += ",serial=QUJDLTEyMw==,base64=1"
    await run(ci, await clone(ci, 121, name="lab-02"))
    config = await ok(await ci.get("/nodes/pve1/qemu/121/config"))
    new_uuid = re.search(r"uuid=([0-9a-f-]+)", config["smbios1"])
    old_uuid = re.search(r"uuid=([0-9a-f-]+)", source["smbios1"])
    assert new_uuid is not None
    assert old_uuid is not None
    assert new_uuid[1] != old_uuid[1]
    assert "serial=QUJDLTEyMw==" in config["smbios1"]
    assert config["net0"].split(",")[0] != source["net0"].split(",")[0]
    assert config["vmgenid"] != source["vmgenid"]
    assert config["name"] == "lab-02"


async def test_clone_copies_meta_and_create_writes_a_new_one(
    ci: httpx.AsyncClient, admin: httpx.AsyncClient, sim: Simulator
) -> None:
    """qemu-server `clone_vm` copies every key it does not handle, `meta` included (its
    ctime is the source's creation time); `create_vm` always writes a new `meta`."""
    source = sim.cluster.vms[9000].config
    await run(ci, await clone(ci, 122, name="lab-03", description="notes\nopenvle-clone: x"))
    cloned = await ok(await ci.get("/nodes/pve1/qemu/122/config"))
    assert cloned["meta"] == source["meta"]
    assert cloned["description"] == "notes\nopenvle-clone: x"
    data = {"vmid": 123, "name": "by-hand", "memory": 512}
    await run(admin, await admin.post("/nodes/pve2/qemu", data=data))
    created = await ok(await admin.get("/nodes/pve2/qemu/123/config"))
    ctime = int(created["meta"].rpartition("ctime=")[2])
    assert ctime > int(source["meta"].rpartition("ctime=")[2])
    assert created["vmgenid"] not in (source["vmgenid"], cloned["vmgenid"])


async def test_full_clone_logs_transfer_progress(ci: httpx.AsyncClient) -> None:
    status = await run(ci, await clone(ci, 122, full=1, name="full-01"))
    assert status["exitstatus"] == "OK"
    log = await task_log(ci, status["upid"])
    assert "create full clone of drive scsi0 (ceph:base-9000-disk-0)" in log
    assert "allocated target volume 'ceph:vm-122-disk-0'" in log
    assert "transferred 32.0 GiB of 32.0 GiB (100.00%)" in log
    assert any(line.startswith("transferred 3.2 GiB of 32.0 GiB") for line in log)


async def test_sync_refusals(ci: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    no_pool = await ci.post("/nodes/pve1/qemu/9000/clone", data={"newid": 123})
    assert error(no_pool, 403) == "Permission check failed"
    assert error(await clone(ci, 123, pool="Nope"), 403) == "Permission check failed"
    missing_pool = await clone(admin, 123, pool="Nope")
    assert error(missing_pool, 403) == "Permission check failed (pool 'Nope' does not exist)"
    bad_name = await clone(ci, 123, name="lab_01")
    assert error(bad_name, 400) == "Parameter verification failed."
    assert "DNS name" in bad_name.json()["errors"]["name"]
    local_other_node = await clone(ci, 123, vmid=9002, node="pve2", target="pve1")
    assert error(local_other_node) == "can't clone VM to node 'pve1' (VM uses local storage)"
    linked_storage = await clone(ci, 123, storage="ceph")
    assert error(linked_storage) == "parameter 'storage' not allowed for linked clones"
    outside = await clone(ci, 123, vmid=200)
    assert error(outside, 403) == "Permission check failed (/vms/200, VM.Clone)"


async def test_clone_of_template_on_local_storage_to_same_node_is_fine(
    ci: httpx.AsyncClient,
) -> None:
    status = await run(ci, await clone(ci, 124, vmid=9002, node="pve2"))
    assert status["exitstatus"] == "OK"
    other_node = await run(ci, await clone(ci, 125, target="pve3"))
    assert other_node["exitstatus"] == "OK"
    assert (await ok(await ci.get("/nodes/pve3/qemu/125/status/current")))["status"] == "stopped"


async def test_new_vm_lags_in_resources_until_the_stats_tick(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.cluster.autotick = False
    await run(ci, await clone(ci, 126, name="lagging"))
    entries = await ok(await ci.get("/cluster/resources", params={"type": "vm"}))
    entry = next(e for e in entries if e["vmid"] == 126)
    assert entry["status"] == "unknown"
    assert "name" not in entry
    assert entry["pool"] == POOL
    live = await ok(await ci.get("/nodes/pve1/qemu/126/status/current"))
    assert live["status"] == "stopped"
    assert live["name"] == "lagging"
    sim.cluster.tick()
    entries = await ok(await ci.get("/cluster/resources", params={"type": "vm"}))
    entry = next(e for e in entries if e["vmid"] == 126)
    assert entry["name"] == "lagging"
    assert entry["status"] == "stopped"


async def test_nextid_race_loser_fails_inside_its_task(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    newid = await ok(await ci.get("/cluster/nextid"))
    assert isinstance(newid, str)
    again = await ok(await ci.get("/cluster/nextid"))
    assert again == newid  # nothing reserved
    sim.cluster.tasks.gate.clear()
    first, second = await asyncio.gather(clone(ci, int(newid)), clone(ci, int(newid)))
    upids = [await ok(first), await ok(second)]
    sim.cluster.tasks.gate.set()
    results = sorted([(await wait_task(ci, u))["exitstatus"] for u in upids])
    assert results == ["OK", f"unable to create VM {newid}: config file already exists"]
    taken = await ci.get("/cluster/nextid", params={"vmid": newid})
    assert error(taken, 400) == "Parameter verification failed."
    assert taken.json()["errors"] == {"vmid": f"VM {newid} already exists"}


async def test_lock_clone_is_visible_and_blocks_other_operations(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=0.02) as sim, pve(sim) as ci, pve(sim, ADMIN_TOKEN) as admin:
        sim.cluster.autotick = False
        upid = await ok(await clone(ci, 130, full=1, name="locked"))
        for _ in range(500):
            if 130 in sim.cluster.vms:
                break
            await asyncio.sleep(0.005)
        # Not in the pool until the task ends, so the pool-scoped token cannot see it yet.
        hidden = await ci.get("/nodes/pve1/qemu/130/config")
        assert error(hidden, 403) == "Permission check failed (/vms/130, VM.Audit)"
        assert sim.cluster.pool_of(130) is None
        config = await ok(await admin.get("/nodes/pve1/qemu/130/config"))
        assert config["lock"] == "clone"
        entries = await ok(await admin.get("/cluster/resources", params={"type": "vm"}))
        assert next(e for e in entries if e["vmid"] == 130)["lock"] == "clone"
        put = await admin.put("/nodes/pve1/qemu/130/config", data={"cores": 4})
        assert error(put) == "VM is locked (clone)"
        # The clone worker holds the VM's flock throughout: a start waits 10 s, then fails.
        start = await admin.post("/nodes/pve1/qemu/130/status/start")
        timeout = "can't lock file '/var/lock/qemu-server/lock-130.conf' - got timeout"
        assert (await run(admin, start))["exitstatus"] == timeout
        assert (await wait_task(ci, upid))["exitstatus"] == "OK"
        assert sim.cluster.pool_of(130) == POOL
        assert "lock" not in (await ok(await ci.get("/nodes/pve1/qemu/130/config")))


async def test_concurrent_full_clones_to_one_id_time_out_on_the_flock(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=0.01) as sim, pve(sim) as ci:
        sim.cluster.tasks.gate.clear()
        responses = await asyncio.gather(clone(ci, 131, full=1), clone(ci, 131, full=1))
        upids = [await ok(r) for r in responses]
        sim.cluster.tasks.gate.set()
        results = sorted([(await wait_task(ci, u))["exitstatus"] for u in upids])
        assert results == [
            "OK",
            "can't lock file '/var/lock/qemu-server/lock-131.conf' - got timeout",
        ]


async def test_many_full_clones_on_local_lvm_hit_the_storage_lock(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=0.004) as sim, pve(sim) as ci:
        sim.cluster.tasks.gate.clear()
        responses = [await clone(ci, 140 + i, vmid=9002, node="pve2", full=1) for i in range(8)]
        upids = [await ok(r) for r in responses]
        sim.cluster.tasks.gate.set()
        results = [(await wait_task(ci, u))["exitstatus"] for u in upids]
        lock = "/var/lock/pve-manager/pve-storage-local-lvm"
        message = f"clone failed: can't lock file '{lock}' - got timeout"
        assert "OK" in results
        assert message in results
        assert set(results) == {"OK", message}
        failed = [140 + i for i, r in enumerate(results) if r != "OK"]
        assert all(vmid not in sim.cluster.vms for vmid in failed)  # cleaned up


async def test_clone_task_failure_fault(make_sim: MakeSim) -> None:
    async with make_sim(faults="task_fail=qmclone:n=1") as sim, pve(sim) as ci:
        first = await run(ci, await clone(ci, 150))
        assert first["exitstatus"].startswith("clone failed:")
        assert (await task_log(ci, first["upid"]))[-1] == f"TASK ERROR: {first['exitstatus']}"
        assert (await run(ci, await clone(ci, 150)))["exitstatus"] == "OK"


async def test_nextid_collision_fault(make_sim: MakeSim) -> None:
    async with make_sim(faults="nextid_collision:n=1") as sim, pve(sim) as ci:
        newid = int(await ok(await ci.get("/cluster/nextid")))
        status = await run(ci, await clone(ci, newid))
        assert status["exitstatus"] == f"unable to create VM {newid}: config file already exists"
        assert newid in sim.cluster.vms
        assert sim.cluster.pool_of(newid) != POOL
        assert int(await ok(await ci.get("/cluster/nextid"))) != newid


async def test_admin_sees_other_team_and_clones_without_pool(sim: Simulator) -> None:
    async with pve(sim, ADMIN_TOKEN) as admin:
        response = await admin.post("/nodes/pve1/qemu/200/clone", data={"newid": 160})
        status = await run(admin, response)
        assert status["exitstatus"] == "OK"
        log = await task_log(admin, status["upid"])
        assert "create full clone of drive scsi0 (ceph:vm-200-disk-0)" in log  # not a template


async def test_parallel_clones_of_a_stopped_template_share_its_lock(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=0.01) as sim, pve(sim) as ci:
        sim.cluster.tasks.gate.clear()
        upids = [await ok(await clone(ci, 170 + i)) for i in range(5)]
        sim.cluster.tasks.gate.set()
        results = [(await wait_task(ci, u))["exitstatus"] for u in upids]
        assert results == ["OK"] * 5


async def test_parallel_clones_of_a_running_vm_hit_its_exclusive_lock(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=0.01) as sim, pve(sim, ADMIN_TOKEN) as admin:
        assert sim.cluster.vms[200].running
        sim.cluster.tasks.gate.clear()
        first = await ok(await admin.post("/nodes/pve1/qemu/200/clone", data={"newid": 180}))
        second = await ok(await admin.post("/nodes/pve1/qemu/200/clone", data={"newid": 181}))
        sim.cluster.tasks.gate.set()
        results = sorted([(await wait_task(admin, u))["exitstatus"] for u in (first, second)])
        assert results == [
            "OK",
            "can't lock file '/var/lock/qemu-server/lock-200.conf' - got timeout",
        ]
