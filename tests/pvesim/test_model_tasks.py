"""Tasks and locks on the model directly, plus task endpoints and visibility over HTTP."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from openvle_pvesim.cluster import Cluster, NoFaults
from openvle_pvesim.contract import Request
from openvle_pvesim.handlers.config import post_config
from openvle_pvesim.seeds import OPENVLE_TOKEN, build_cluster
from openvle_pvesim.tasks import UPID_RE, FLock, TaskContext, TaskError, TaskManager
from tests.pvesim.kit import ADMIN_TOKEN, MakeSim, pve
from tests.pvesim.modelkit import error, ok, run, wait_task


def make(version: str = "9.1", time_scale: float = 0.0) -> Cluster:
    return build_cluster(
        "demo",
        version=version,
        vms=0,
        time_scale=time_scale,
        faults=NoFaults(),
        rng=random.Random(3),
        tokens=[],
    )


async def test_task_lifecycle_and_error_text_on_one_line() -> None:
    manager = TaskManager(0.01, random.Random(1))

    async def failing(ctx: TaskContext) -> None:
        ctx.log("working")
        await ctx.sleep(1)
        raise TaskError("first line\nsecond line")

    upid = await manager.spawn("pve1", "qmstart", "100", "openvle@pve!ci", failing)
    match = UPID_RE.match(upid)
    assert match is not None
    assert manager.tasks[upid].status == "running"
    task = await manager.wait(upid)
    assert task.status == "stopped"
    assert task.exitstatus == "first line second line"
    assert task.log == ["working", "TASK ERROR: first line second line"]
    status = task.status_data()
    assert (status["user"], status["tokenid"]) == ("openvle@pve", "ci")
    assert "endtime" not in status
    assert task.list_item()["endtime"] >= task.starttime


async def test_flock_shared_and_exclusive_with_timeouts() -> None:
    lock = FLock("/var/lock/qemu-server/lock-100.conf")
    await lock.acquire(0.01, shared=True)
    await lock.acquire(0.01, shared=True)  # shared holders coexist
    with pytest.raises(TaskError, match=r"can't lock file '/var/lock/qemu-server/lock-100.conf'"):
        await lock.acquire(0.01)
    await lock.release(shared=True)
    await lock.release(shared=True)
    await lock.acquire(0.0)  # free: no wait needed even with a zero timeout
    waiter = asyncio.ensure_future(lock.acquire(1.0))
    await asyncio.sleep(0)
    await lock.release()
    await waiter
    assert lock.writer


async def test_gate_holds_workers_even_at_time_scale_zero() -> None:
    manager = TaskManager(0.0, random.Random(1))
    manager.gate.clear()

    async def worker(ctx: TaskContext) -> None:
        await ctx.sleep(5)

    upid = await manager.spawn("pve1", "qmstop", "100", "root@pam", worker)
    await asyncio.sleep(0)
    assert manager.tasks[upid].status == "running"
    manager.gate.set()
    assert (await manager.wait(upid)).exitstatus == "OK"


async def test_stats_loop_and_ha_loop_run_and_stop() -> None:
    cluster = make(time_scale=0.001)
    cluster.start()
    cluster.vms[9000].entry = None
    for _ in range(200):
        if cluster.vms[9000].entry is not None:
            break
        await asyncio.sleep(0.01)
    assert cluster.vms[9000].entry is not None
    await cluster.stop()
    assert cluster._loops == []


async def test_background_delay_returns_null_when_done() -> None:
    cluster = make()
    principal = cluster.access.principal("openvle@pve", OPENVLE_TOKEN)
    params = {"node": "pve1", "vmid": 9000, "description": "x", "background_delay": 5}
    template = "/nodes/{node}/qemu/{vmid}/config"
    request = Request("POST", "/nodes/pve1/qemu/9000/config", template, params, principal, cluster)
    assert await post_config(request) is None
    assert cluster.vms[9000].config["description"] == "x"


async def test_task_endpoints(ci: httpx.AsyncClient) -> None:
    response = await ci.post(
        "/nodes/pve1/qemu/9000/clone", data={"newid": 600, "pool": "OpenVLE-VMs"}
    )
    status = await run(ci, response)
    upid = status["upid"]
    page = await ci.get(f"/nodes/pve1/tasks/{upid}/log", params={"start": 1, "limit": 1})
    assert page.json()["total"] == 3
    assert page.json()["data"] == [
        {"n": 2, "t": "create full clone of drive ide2 (ceph:vm-9000-cloudinit)"}
    ]
    bad = await ci.get("/nodes/pve1/tasks/UPID:nope/status")
    assert error(bad, 400) == "Parameter verification failed."
    assert bad.json()["errors"] == {"upid": "unable to parse worker upid"}
    missing = await ci.get(f"/nodes/pve1/tasks/{upid.replace(':qmclone:', ':qmstart:')}/status")
    assert missing.json()["errors"] == {"upid": "no such task"}
    listed = await ci.get("/nodes/pve1/tasks", params={"typefilter": "qmclone"})
    assert [t["upid"] for t in listed.json()["data"]] == [upid]
    assert listed.json()["total"] == 1
    assert listed.json()["data"][0]["status"] == "OK"
    cluster_tasks = await ok(await ci.get("/cluster/tasks"))
    assert upid in {t["upid"] for t in cluster_tasks}


async def test_stopping_a_task_interrupts_it(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=1.0) as sim, pve(sim, ADMIN_TOKEN) as admin:
        upid = await ok(await admin.post("/nodes/pve1/qemu/200/status/shutdown"))
        assert await ok(await admin.delete(f"/nodes/pve1/tasks/{upid}")) is None
        status = await wait_task(admin, upid)
        assert status["exitstatus"] == "received interrupt"
        assert sim.cluster.vms[200].running


async def test_storage_usage_follows_the_disks() -> None:
    cluster = make()
    ceph = cluster.storages["ceph"].used[""]
    local = cluster.storages["local-lvm"].used
    assert set(local) == {"pve2"}
    assert local["pve2"] == 80 * 1024**3
    assert ceph >= (32 + 40 + 3 * 20) * 1024**3
