"""Power actions, HA indirection, delete and template rules over HTTP, for both versions."""

from __future__ import annotations

import asyncio

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.kit import MakeSim, pve
from tests.pvesim.modelkit import error, ok, run, task_log, wait_task

POOL = "OpenVLE-VMs"


async def new_vm(
    client: httpx.AsyncClient, newid: int, vmid: int = 9000, node: str = "pve1"
) -> int:
    data = {"newid": newid, "pool": POOL, "name": f"vm-{newid}"}
    status = await run(client, await client.post(f"/nodes/{node}/qemu/{vmid}/clone", data=data))
    assert status["exitstatus"] == "OK"
    return newid


async def power(
    client: httpx.AsyncClient, vmid: int, action: str, **data: object
) -> httpx.Response:
    return await client.post(f"/nodes/pve1/qemu/{vmid}/status/{action}", data=data)


async def current(client: httpx.AsyncClient, vmid: int, node: str = "pve1") -> dict[str, object]:
    data: dict[str, object] = await ok(
        await client.get(f"/nodes/{node}/qemu/{vmid}/status/current")
    )
    return data


async def test_start_stop_cycle_is_live(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await new_vm(ci, 300)
    status = await run(ci, await power(ci, vmid, "start"))
    assert status["exitstatus"] == "OK"
    assert status["type"] == "qmstart"
    assert (await current(ci, vmid))["status"] == "running"
    again = await run(ci, await power(ci, vmid, "start"))
    assert again["exitstatus"] == f"VM {vmid} already running"
    assert (await run(ci, await power(ci, vmid, "stop")))["exitstatus"] == "OK"
    assert (await current(ci, vmid))["status"] == "stopped"
    noop = await run(ci, await power(ci, vmid, "stop"))
    assert noop["exitstatus"] == "OK"


async def test_stopped_vm_refuses_reboot_reset_suspend(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 301)
    for action in ("reboot", "reset", "suspend"):
        assert error(await power(ci, vmid, action)) == f"VM {vmid} not running"


async def test_suspend_resume_reset_reboot_on_running_vm(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 302)
    await run(ci, await power(ci, vmid, "start"))
    paused = await run(ci, await power(ci, vmid, "suspend"))
    assert paused["type"] == "qmpause"
    state = await current(ci, vmid)
    assert (state["status"], state["qmpstatus"]) == ("running", "paused")
    assert error(await power(ci, vmid, "shutdown")) == "VM is paused - cannot shutdown"
    assert (await run(ci, await power(ci, vmid, "resume")))["exitstatus"] == "OK"
    assert (await current(ci, vmid))["qmpstatus"] == "running"
    assert (await run(ci, await power(ci, vmid, "reset")))["exitstatus"] == "OK"
    assert (await run(ci, await power(ci, vmid, "reboot")))["exitstatus"] == "OK"
    assert (await current(ci, vmid))["status"] == "running"


async def test_start_of_template_fails_in_the_task(ci: httpx.AsyncClient) -> None:
    status = await run(ci, await power(ci, 9000, "start"))
    assert status["exitstatus"] == "you can't start a vm if it's a template"
    assert (await task_log(ci, status["upid"]))[-1] == (
        "TASK ERROR: you can't start a vm if it's a template"
    )


async def test_config_lock_fails_start_inside_the_task(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    vmid = await new_vm(ci, 303)
    sim.cluster.vms[vmid].config["lock"] = "backup"
    assert (await run(ci, await power(ci, vmid, "start")))["exitstatus"] == "VM is locked (backup)"
    put = await ci.put(f"/nodes/pve1/qemu/{vmid}/config", data={"cores": 2})
    assert error(put) == "VM is locked (backup)"


async def test_shutdown_uses_agent_when_running_else_acpi(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    vmid = await new_vm(ci, 304)
    await run(ci, await power(ci, vmid, "start"))
    assert (await run(ci, await power(ci, vmid, "shutdown")))["exitstatus"] == "OK"
    assert sim.cluster.vms[vmid].last_shutdown == "agent"
    await run(ci, await power(ci, vmid, "start"))
    sim.cluster.set_agent(vmid, "stopped")
    assert (await run(ci, await power(ci, vmid, "shutdown")))["exitstatus"] == "OK"
    assert sim.cluster.vms[vmid].last_shutdown == "acpi"
    assert (await current(ci, vmid))["status"] == "stopped"


async def test_shutdown_timeout_without_force_fails(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await new_vm(ci, 305)
    await run(ci, await power(ci, vmid, "start"))
    sim.cluster.set_agent(vmid, "none")
    status = await run(ci, await power(ci, vmid, "shutdown", timeout=2))
    assert status["exitstatus"] == "VM quit/powerdown failed - got timeout"
    assert (await current(ci, vmid))["status"] == "running"
    forced = await run(ci, await power(ci, vmid, "shutdown", timeout=2, forceStop=1))
    assert forced["exitstatus"] == "OK"
    assert (await current(ci, vmid))["status"] == "stopped"


async def test_ha_start_and_stop_go_through_ha_rounds(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.cluster.autotick = False
    vmid = await new_vm(ci, 306)
    assert (
        await ok(
            await ci.post("/cluster/ha/resources", data={"sid": f"vm:{vmid}", "state": "stopped"})
        )
        is None
    )
    assert (await current(ci, vmid))["ha"] == {"managed": 1, "state": "stopped"}
    status = await run(ci, await power(ci, vmid, "start"))
    assert status["type"] == "hastart"
    assert status["exitstatus"] == "OK"
    assert (await current(ci, vmid))["status"] == "stopped"  # not yet: the CRM acts later
    await sim.cluster.ha_round()
    await sim.cluster.tasks.drain()
    state = await current(ci, vmid)
    assert state["status"] == "running"
    assert state["ha"] == {"managed": 1, "state": "started"}
    lrm = [t for t in sim.cluster.tasks.tasks.values() if t.type == "qmstart" and t.id == str(vmid)]
    assert [t.user for t in lrm] == ["root@pam"]
    stop = await run(ci, await power(ci, vmid, "shutdown"))
    assert stop["type"] == "hastop"
    assert (await task_log(ci, stop["upid"]))[0] == f"Requesting HA stop for VM {vmid}"
    assert (await current(ci, vmid))["status"] == "running"
    await sim.cluster.ha_round()
    await sim.cluster.tasks.drain()
    assert (await current(ci, vmid))["status"] == "stopped"
    kinds = [t.type for t in sim.cluster.tasks.tasks.values() if t.user == "root@pam"]
    assert kinds == ["qmstart", "qmshutdown"]  # shutdown asks the CRM for a graceful stop
    entries = await ok(await ci.get("/cluster/resources", params={"type": "vm"}))
    assert next(e for e in entries if e["vmid"] == vmid)["hastate"] == "stopped"


async def test_delete_rules(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await new_vm(ci, 307)
    await run(ci, await power(ci, vmid, "start"))
    assert (
        error(await ci.delete(f"/nodes/pve1/qemu/{vmid}"))
        == f"VM {vmid} is running - destroy failed"
    )
    await run(ci, await power(ci, vmid, "stop"))
    await ok(await ci.post("/cluster/ha/resources", data={"sid": str(vmid), "state": "stopped"}))
    refused = await ci.delete(f"/nodes/pve1/qemu/{vmid}")
    assert error(refused) == (
        f"unable to remove VM {vmid} - used in HA resources and purge parameter not set."
    )
    template = await run(ci, await ci.delete("/nodes/pve1/qemu/9000"))
    assert template["exitstatus"].startswith("base volume 'ceph:base-9000-disk-0' is still in use")
    purged = await run(ci, await ci.delete(f"/nodes/pve1/qemu/{vmid}", params={"purge": 1}))
    assert purged["exitstatus"] == "OK"
    assert vmid not in sim.cluster.vms
    assert vmid not in sim.cluster.ha
    assert sim.cluster.pool_of(vmid) is None
    gone = await ci.get(f"/nodes/pve1/qemu/{vmid}/status/current")
    assert error(gone, 403).startswith("Permission check failed")


async def test_template_conversion_rules(ci: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    assert error(await ci.post("/nodes/pve1/qemu/9000/template")) == (
        "you can't convert a template to a template"
    )
    vmid = await new_vm(ci, 308)
    await run(ci, await power(ci, vmid, "start"))
    assert error(await ci.post(f"/nodes/pve1/qemu/{vmid}/template")) == (
        "you can't convert a VM to template if VM is running"
    )
    await run(ci, await power(ci, vmid, "stop"))
    assert (await run(ci, await ci.post(f"/nodes/pve1/qemu/{vmid}/template")))["exitstatus"] == "OK"
    config = await ok(await ci.get(f"/nodes/pve1/qemu/{vmid}/config"))
    assert config["template"] == 1
    assert "/base-308-disk-" in config["scsi0"]


async def test_migrate_offline_online_and_preconditions(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    vmid = await new_vm(ci, 309)
    pre = await ok(await ci.get(f"/nodes/pve1/qemu/{vmid}/migrate", params={"target": "pve2"}))
    assert pre["allowed_nodes"] == ["pve2", "pve3"]
    assert pre["local_disks"] == []
    local = await ok(await ci.get("/nodes/pve2/qemu/9002/migrate"))
    volids = [d["volid"] for d in local["local_disks"]]
    assert volids == ["local-lvm:base-9002-disk-0", "local-lvm:vm-9002-cloudinit"]
    same = await ci.post(f"/nodes/pve1/qemu/{vmid}/migrate", data={"target": "pve1"})
    assert error(same, 400) == "Parameter verification failed."
    assert same.json()["errors"] == {"target": "target is local node."}
    await run(ci, await power(ci, vmid, "start"))
    refused = await ci.post(f"/nodes/pve1/qemu/{vmid}/migrate", data={"target": "pve2"})
    assert error(refused) == "can't migrate running VM without --online"
    moved = await run(
        ci, await ci.post(f"/nodes/pve1/qemu/{vmid}/migrate", data={"target": "pve2", "online": 1})
    )
    assert moved["exitstatus"] == "OK"
    assert any("VM-state" in line for line in await task_log(ci, moved["upid"]))
    assert sim.cluster.vms[vmid].node == "pve2"
    old_node = await ci.get(f"/nodes/pve1/qemu/{vmid}/status/current")
    assert (
        error(old_node) == f"Configuration file 'nodes/pve1/qemu-server/{vmid}.conf' does not exist"
    )
    assert (await current(ci, vmid, "pve2"))["status"] == "running"


async def test_migrate_lock_is_visible_meanwhile(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=0.05) as sim, pve(sim) as ci:
        vmid = await new_vm(ci, 310)
        await run(ci, await power(ci, vmid, "start"))
        upid = await ok(
            await ci.post(f"/nodes/pve1/qemu/{vmid}/migrate", data={"target": "pve3", "online": 1})
        )
        for _ in range(400):
            if sim.cluster.vms[vmid].config.get("lock") == "migrate":
                break
            await asyncio.sleep(0.005)
        config = await ok(await ci.get(f"/nodes/pve1/qemu/{vmid}/config"))
        assert config["lock"] == "migrate"
        assert error(
            await ci.post(f"/nodes/pve1/qemu/{vmid}/clone", data={"newid": 311, "pool": POOL})
        ) == ("VM is locked (migrate)")
        assert (await wait_task(ci, upid))["exitstatus"] == "OK"


async def test_task_fail_fault_on_start(make_sim: MakeSim) -> None:
    async with (
        make_sim(faults="task_fail=qmstart:n=1:msg=start failed: QEMU exited with code 1") as sim,
        pve(sim) as ci,
    ):
        vmid = await new_vm(ci, 312)
        failed = await run(ci, await power(ci, vmid, "start"))
        assert failed["exitstatus"] == "start failed: QEMU exited with code 1"
        assert (await run(ci, await power(ci, vmid, "start")))["exitstatus"] == "OK"


async def test_lock_timeout_fault(make_sim: MakeSim) -> None:
    async with make_sim(faults="lock_timeout=qmstop:n=1") as sim, pve(sim) as ci:
        vmid = await new_vm(ci, 313)
        await run(ci, await power(ci, vmid, "start"))
        failed = await run(ci, await power(ci, vmid, "stop"))
        assert failed["exitstatus"] == (
            f"can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout"
        )
        assert (await current(ci, vmid))["status"] == "running"


async def test_migrate_with_local_disks(admin: httpx.AsyncClient, sim: Simulator) -> None:
    offline = await admin.post("/nodes/pve2/qemu/9002/migrate", data={"target": "pve3"})
    status = await run(admin, offline)
    assert status["exitstatus"] == "OK"
    assert "copying local disk 'local-lvm:base-9002-disk-0' (scsi0)" in await task_log(
        admin, status["upid"]
    )
    vmid = await new_vm(admin, 314, vmid=9002, node="pve3")
    running = await run(admin, await admin.post(f"/nodes/pve3/qemu/{vmid}/status/start"))
    assert running["exitstatus"] == "OK"
    online = {"target": "pve1", "online": 1}
    refused = await run(admin, await admin.post(f"/nodes/pve3/qemu/{vmid}/migrate", data=online))
    assert refused["exitstatus"] == (
        "can't live migrate attached local disks without with-local-disks option"
    )
    both = {**online, "with-local-disks": 1}
    moved = await run(admin, await admin.post(f"/nodes/pve3/qemu/{vmid}/migrate", data=both))
    assert moved["exitstatus"] == "OK"
    assert sim.cluster.vms[vmid].node == "pve1"


async def test_ha_service_enters_error_after_failed_restarts(
    make_sim: MakeSim,
) -> None:
    async with make_sim(faults="task_fail=qmstart:n=2") as sim, pve(sim) as ci:
        sim.cluster.autotick = False
        vmid = await new_vm(ci, 315)
        await ok(await ci.post("/cluster/ha/resources", data={"sid": f"vm:{vmid}"}))
        for _ in range(3):
            await sim.cluster.ha_round()
            await sim.cluster.tasks.drain()
        assert (await current(ci, vmid))["ha"] == {"managed": 1, "state": "error"}
        put = await ci.put(f"/cluster/ha/resources/vm:{vmid}", data={"state": "started"})
        assert error(put) == f"service 'vm:{vmid}' in error state, must be disabled and fixed first"
        await ok(await ci.put(f"/cluster/ha/resources/vm:{vmid}", data={"state": "disabled"}))
        await ok(await ci.put(f"/cluster/ha/resources/vm:{vmid}", data={"state": "started"}))
        await sim.cluster.ha_round()
        await sim.cluster.tasks.drain()
        assert (await current(ci, vmid))["status"] == "running"
