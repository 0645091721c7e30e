"""POST .../move_disk over HTTP: to another storage (qemu-img or drive mirror), or to
another VM (qemu-server API2/Qemu.pm `move_vm_disk`)."""

from __future__ import annotations

from typing import Any

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.kit import pve
from tests.pvesim.modelkit import error, ok, run, task_log

POOL = "OpenVLE-VMs"
GIB = 1024**3


async def clone(client: httpx.AsyncClient, newid: int) -> None:
    data = {"newid": newid, "pool": POOL, "name": f"mv-{newid}"}
    status = await run(client, await client.post("/nodes/pve1/qemu/9000/clone", data=data))
    assert status["exitstatus"] == "OK"


async def move(client: httpx.AsyncClient, vmid: int, **data: Any) -> httpx.Response:
    return await client.post(f"/nodes/pve1/qemu/{vmid}/move_disk", data=data)


async def config(client: httpx.AsyncClient, vmid: int) -> dict[str, Any]:
    data: dict[str, Any] = await ok(await client.get(f"/nodes/pve1/qemu/{vmid}/config"))
    return data


async def local_used(client: httpx.AsyncClient) -> int:
    storages = await ok(await client.get("/nodes/pve1/storage"))
    return int(next(s for s in storages if s["storage"] == "local-lvm")["used"])


async def test_move_to_another_storage_keeps_the_source_as_unused(
    ci: httpx.AsyncClient,
) -> None:
    await clone(ci, 370)
    before = await local_used(ci)
    status = await run(ci, await move(ci, 370, disk="scsi0", storage="local-lvm"))
    assert (status["exitstatus"], status["type"], status["id"]) == ("OK", "qmmove", "370")
    moved = await config(ci, 370)
    assert moved["scsi0"] == "local-lvm:vm-370-disk-0,iothread=1,size=32G"
    assert moved["unused0"] == "ceph:base-9000-disk-0/vm-370-disk-0"
    log = await task_log(ci, status["upid"])
    assert log[0] == (
        "copying volume 'ceph:base-9000-disk-0/vm-370-disk-0' from current storage 'ceph' "
        "to target storage 'local-lvm'"
    )
    assert "allocated target volume 'local-lvm:vm-370-disk-0'" in log
    assert (
        "adding source volume 'ceph:base-9000-disk-0/vm-370-disk-0' as 'unused0' to config" in log
    )
    assert await local_used(ci) == before + 32 * GIB  # now a full copy


async def test_move_with_delete_drops_the_source_and_mirrors_a_running_vm(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(ci, 371)
    start = await run(ci, await ci.post("/nodes/pve1/qemu/371/status/start"))
    assert start["exitstatus"] == "OK"
    status = await run(ci, await move(ci, 371, disk="scsi0", storage="local-lvm", delete=1))
    assert status["exitstatus"] == "OK"
    assert not any(k.startswith("unused") for k in await config(ci, 371))
    log = await task_log(ci, status["upid"])
    job = "mirror-scsi0" if sim.version == "9.1" else "drive-scsi0"
    assert "drive mirror is starting for drive-scsi0" in log
    assert f"{job}: Completed successfully." in log
    assert (
        "removing source volume 'ceph:base-9000-disk-0/vm-371-disk-0' after successful copy" in log
    )


async def test_synchronous_refusals(ci: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(ci, 372)
    assert error(await move(ci, 372, disk="scsi0", storage="ceph")) == (
        "you can't move to the same storage with same format"
    )
    assert error(await move(ci, 372, disk="ide2", storage="local-lvm")) == "you can't move a cdrom"
    assert error(await move(ci, 372, disk="scsi3", storage="local-lvm")) == (
        "disk 'scsi3' does not exist"
    )
    both = await move(ci, 372, disk="scsi0", storage="local-lvm", **{"target-vmid": 9000})
    assert error(both, 400) == "Parameter verification failed."
    assert "not both" in both.json()["errors"]["storage"]
    neither = await move(ci, 372, disk="scsi0")
    assert "missing" in neither.json()["errors"]["target-vmid"]
    sim.cluster.vms[372].config["lock"] = "backup"
    assert error(await move(ci, 372, disk="scsi0", storage="local-lvm")) == "VM is locked (backup)"


async def test_moving_needs_space_rights_on_the_target_storage(sim: Simulator) -> None:
    access = sim.cluster.access
    access.add_role("DiskOnly", ["VM.Config.Disk", "VM.Audit"])
    access.add_token("disk@pve!tk", "s3cret", privsep=False)
    access.set_acl("/vms", "disk@pve", "DiskOnly")
    headers = {"Authorization": "PVEAPIToken=disk@pve!tk=s3cret"}
    async with pve(sim, token=None, headers=headers) as client:
        refused = await move(client, 9000, disk="scsi0", storage="local-lvm")
    assert (
        error(refused, 403)
        == "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)"
    )


async def test_reassign_to_another_vm_on_the_node(ci: httpx.AsyncClient) -> None:
    await clone(ci, 373)
    await clone(ci, 374)
    data = {"disk": "scsi0", "target-vmid": 374, "target-disk": "scsi1"}
    status = await run(ci, await move(ci, 373, **data))
    assert status["exitstatus"] == "OK"
    assert status["id"] == "373-scsi0>374-scsi1"
    source, target = await config(ci, 373), await config(ci, 374)
    assert "scsi0" not in source
    assert source["boot"] == ""  # scsi0 was the only boot device
    assert target["scsi1"] == "ceph:base-9000-disk-0/vm-374-disk-1,iothread=1,size=32G"
    again = await move(ci, 374, disk="scsi1", **{"target-vmid": 374})
    assert "must be different" in again.json()["errors"]["target-vmid"]
    busy = await move(ci, 374, disk="scsi1", **{"target-vmid": 373, "target-disk": "ide2"})
    assert error(busy) == "Target disk key 'ide2' is already in use for VM '373'"
