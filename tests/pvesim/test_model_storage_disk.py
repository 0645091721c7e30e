"""GET /storage, storage content, node network, resize and unlink over HTTP."""

from __future__ import annotations

import httpx

from tests.pvesim.modelkit import error, ok, run

BASE = "/nodes/pve3/qemu/202"


async def test_storage_lists_and_content(ci: httpx.AsyncClient) -> None:
    storages = await ok(await ci.get("/storage"))
    assert {s["storage"] for s in storages} == {"local-lvm", "ceph"}
    content = await ok(await ci.get("/nodes/pve1/storage/ceph/content", params={"vmid": 9000}))
    assert {"volid": "ceph:base-9000-disk-0", "format": "raw", "size": 32 * 1024**3,
            "vmid": 9000, "content": "images"} in content  # fmt: skip
    assert await ok(await ci.get("/nodes/pve1/storage/local-lvm/content")) == []  # 9002 is on pve2
    network = await ok(await ci.get("/nodes/pve1/network", params={"type": "bridge"}))
    assert [n["iface"] for n in network] == ["vmbr0"]


async def test_resize_grows_and_refuses_to_shrink(admin: httpx.AsyncClient) -> None:
    done = await run(
        admin, await admin.put(f"{BASE}/resize", data={"disk": "scsi0", "size": "+2G"})
    )
    assert done["type"] == "resize"
    assert (await ok(await admin.get(f"{BASE}/config")))["scsi0"].endswith(",size=22G")
    shrink = await run(
        admin, await admin.put(f"{BASE}/resize", data={"disk": "scsi0", "size": "1G"})
    )
    assert shrink["exitstatus"] == "shrinking disks is not supported"
    cdrom = await run(
        admin, await admin.put(f"{BASE}/resize", data={"disk": "ide2", "size": "+1G"})
    )
    assert cdrom["exitstatus"] == "you can't resize a cdrom"


async def test_unlink_keeps_the_volume_unused_unless_forced(admin: httpx.AsyncClient) -> None:
    await ok(await admin.put(f"{BASE}/config", data={"scsi1": "ceph:1", "scsi2": "ceph:1"}))
    assert await ok(await admin.put(f"{BASE}/unlink", data={"idlist": "scsi1"})) is None
    await ok(await admin.put(f"{BASE}/unlink", data={"idlist": "scsi2", "force": 1}))
    config = await ok(await admin.get(f"{BASE}/config"))
    assert config["unused0"] == "ceph:vm-202-disk-1"
    assert "scsi2" not in config
    assert "unused1" not in config


async def test_ci_may_not_resize_a_foreign_vm(ci: httpx.AsyncClient) -> None:
    refused = await ci.put(f"{BASE}/resize", data={"disk": "scsi0", "size": "+1G"})
    assert error(refused, 403) == "Permission check failed (/vms/202, VM.Config.Disk)"
