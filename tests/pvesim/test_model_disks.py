"""Drives added, replaced and removed by a config update allocate and free volumes as
qemu-server's `create_disks` and `vmconfig_register_unused_drive` do."""

from __future__ import annotations

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.kit import pve
from tests.pvesim.modelkit import error, ok, run, task_log


async def config_of(client: httpx.AsyncClient, vmid: int = 202) -> dict[str, str]:
    return dict(await ok(await client.get(f"/nodes/pve3/qemu/{vmid}/config")))


async def test_a_new_disk_is_allocated_and_logged(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/nodes/pve3/qemu/202/config", data={"scsi1": "local-lvm:1,iothread=1,discard=on"}
    )
    status = await run(admin, response)
    config = await config_of(admin)
    assert config["scsi1"] == "local-lvm:vm-202-disk-0,discard=on,iothread=1,size=1G"
    lines = await task_log(admin, status["upid"])
    assert f"scsi1: successfully created disk '{config['scsi1']}'" in lines
    await ok(await admin.put("/nodes/pve3/qemu/202/config", data={"scsi2": "ceph:0.5"}))
    assert (await config_of(admin))["scsi2"] == "ceph:vm-202-disk-1,size=512M"  # 0 is taken


async def test_a_replaced_disk_becomes_unused_and_delete_detaches(
    admin: httpx.AsyncClient,
) -> None:
    await ok(await admin.put("/nodes/pve3/qemu/202/config", data={"scsi0": "ceph:8"}))
    config = await config_of(admin)
    assert config["scsi0"] == "ceph:vm-202-disk-1,size=8G"
    assert config["unused0"] == "ceph:vm-202-disk-0"
    await ok(await admin.put("/nodes/pve3/qemu/202/config", data={"delete": "scsi0"}))
    config = await config_of(admin)
    assert "scsi0" not in config
    assert config["unused1"] == "ceph:vm-202-disk-1"
    await ok(await admin.put("/nodes/pve3/qemu/202/config", data={"delete": "unused0,unused1"}))
    assert not any(k.startswith("unused") for k in await config_of(admin))


async def test_a_cloudinit_drive_is_created_and_freed(admin: httpx.AsyncClient) -> None:
    await ok(await admin.put("/nodes/pve3/qemu/202/config", data={"ide3": "local-lvm:cloudinit"}))
    assert (await config_of(admin))["ide3"] == "local-lvm:vm-202-cloudinit,media=cdrom"
    await ok(await admin.put("/nodes/pve3/qemu/202/config", data={"ide3": "none,media=cdrom"}))
    config = await config_of(admin)
    assert config["ide3"] == "none,media=cdrom"
    assert not any(k.startswith("unused") for k in config)


async def test_allocating_needs_datastore_allocate_space(sim: Simulator) -> None:
    access = sim.cluster.access
    access.add_role("Disks", ["VM.Config.Disk", "VM.Audit"])
    access.add_token("disker@pve!tok", "s3cret", privsep=False)
    access.set_acl("/vms/202", "disker@pve", "Disks")
    sim.tokens["disker@pve!tok"] = "s3cret"
    async with pve(sim, "disker@pve!tok") as client:
        refused = await client.put("/nodes/pve3/qemu/202/config", data={"scsi1": "ceph:1"})
        expected = "Permission check failed (/storage/ceph, Datastore.AllocateSpace)"
        assert error(refused, 403) == expected
    assert "scsi1" not in sim.cluster.vms[202].config


async def test_create_allocates_with_the_same_helper(admin: httpx.AsyncClient) -> None:
    data = {"vmid": 700, "scsi0": "local-lvm:4,iothread=1", "ide2": "local-lvm:cloudinit"}
    await run(admin, await admin.post("/nodes/pve1/qemu", data=data))
    config = dict(await ok(await admin.get("/nodes/pve1/qemu/700/config")))
    assert config["scsi0"] == "local-lvm:vm-700-disk-0,iothread=1,size=4G"
    assert config["ide2"] == "local-lvm:vm-700-cloudinit,media=cdrom"
