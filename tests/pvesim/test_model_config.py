"""VM config reads and updates: digest, delete, smbios1 rules, async POST, privileges."""

from __future__ import annotations

import base64

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.modelkit import error, ok, run

POOL = "OpenVLE-VMs"
CONFIG = "/nodes/pve1/qemu/{vmid}/config"


async def new_vm(client: httpx.AsyncClient, newid: int) -> int:
    data = {"newid": newid, "pool": POOL, "name": f"cfg-{newid}"}
    await run(client, await client.post("/nodes/pve1/qemu/9000/clone", data=data))
    return newid


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_digest_check_and_delete(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 500)
    config = await ok(await ci.get(CONFIG.format(vmid=vmid)))
    assert len(config["digest"]) == 40
    update = {"cores": 4, "delete": "ipconfig0", "digest": config["digest"]}
    assert await ok(await ci.put(CONFIG.format(vmid=vmid), data=update)) is None
    after = await ok(await ci.get(CONFIG.format(vmid=vmid)))
    assert after["cores"] == 4
    assert "ipconfig0" not in after
    assert after["digest"] != config["digest"]
    stale = await ci.put(CONFIG.format(vmid=vmid), data={"cores": 2, "digest": config["digest"]})
    assert error(stale) == "checksum mismatch (file change by other user?)"


async def test_smbios1_needs_base64_charset_and_keeps_uuid(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 501)
    uuid = (await ok(await ci.get(CONFIG.format(vmid=vmid))))["smbios1"].split("uuid=")[1]
    plain = await ci.put(CONFIG.format(vmid=vmid), data={"smbios1": f"uuid={uuid},serial=lab 01"})
    assert error(plain, 400) == "Parameter verification failed."
    assert "smbios1" in plain.json()["errors"]
    value = f"uuid={uuid},serial={b64('0b1e-uuid')},product={b64('lab-01.vle')},base64=1"
    assert await ok(await ci.put(CONFIG.format(vmid=vmid), data={"smbios1": value})) is None
    stored = (await ok(await ci.get(CONFIG.format(vmid=vmid))))["smbios1"]
    assert f"uuid={uuid}" in stored
    assert f"serial={b64('0b1e-uuid')}" in stored
    too_long = f"uuid={uuid},family={'QUFB' * 130},base64=1"
    assert error(await ci.put(CONFIG.format(vmid=vmid), data={"smbios1": too_long}), 400)


async def test_names_must_be_dns_names(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 502)
    bad = await ci.put(CONFIG.format(vmid=vmid), data={"name": "lab_01"})
    assert error(bad, 400) == "Parameter verification failed."
    assert await ok(await ci.put(CONFIG.format(vmid=vmid), data={"name": "lab-01.event"})) is None


async def test_post_config_is_a_task(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 503)
    upid = await ok(await ci.post(CONFIG.format(vmid=vmid), data={"memory": "4096"}))
    assert ":qmconfig:503:openvle@pve!ci:" in upid
    assert (await run(ci, await ci.post(CONFIG.format(vmid=vmid), data={"cores": 3})))[
        "exitstatus"
    ] == "OK"
    config = await ok(await ci.get(CONFIG.format(vmid=vmid)))
    assert config["memory"] == "4096"
    assert config["cores"] == 3


async def test_cloud_init_and_tags(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 504)
    data = {
        "ipconfig0": "ip=10.0.0.5/24,gw=10.0.0.1",
        "ciuser": "student",
        "cipassword": "s3cret",
        "tags": "Lab;event-x,zeta",
    }
    assert await ok(await ci.put(CONFIG.format(vmid=vmid), data=data)) is None
    config = await ok(await ci.get(CONFIG.format(vmid=vmid)))
    assert config["cipassword"] == "**********"
    assert config["ipconfig0"] == "ip=10.0.0.5/24,gw=10.0.0.1"
    assert config["tags"] == "event-x;lab;zeta"


async def test_new_net_device_gets_a_mac(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 505)
    await ok(await ci.put(CONFIG.format(vmid=vmid), data={"net1": "virtio,bridge=vmbr0"}))
    net1 = (await ok(await ci.get(CONFIG.format(vmid=vmid))))["net1"]
    assert net1.startswith("virtio=BC:24:11:")


async def test_root_only_options_and_skiplock(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await new_vm(ci, 506)
    refused = await ci.put(CONFIG.format(vmid=vmid), data={"args": "-no-reboot"})
    assert error(refused, 403).startswith("only root can set 'args' config")
    sim.cluster.vms[vmid].config["lock"] = "backup"
    skip = await ci.put(CONFIG.format(vmid=vmid), data={"cores": 2, "skiplock": 1})
    assert error(skip, 400) == "Parameter verification failed."
    assert skip.json()["errors"] == {"skiplock": "Only root may use this option."}


async def test_create_vm_and_collision(ci: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    data = {
        "vmid": 510,
        "name": "fresh",
        "pool": POOL,
        "memory": "2048",
        "cores": 2,
        "scsi0": "ceph:16",
        "ide2": "ceph:cloudinit",
        "net0": "virtio,bridge=vmbr0",
        "agent": "1",
    }
    status = await run(ci, await ci.post("/nodes/pve1/qemu", data=data))
    assert status["exitstatus"] == "OK"
    assert status["type"] == "qmcreate"
    config = await ok(await ci.get(CONFIG.format(vmid=510)))
    assert config["scsi0"] == "ceph:vm-510-disk-0,size=16G"
    assert config["ide2"] == "ceph:vm-510-cloudinit,media=cdrom"
    assert "uuid=" in config["smbios1"]
    assert "lock" not in config
    again = await admin.post("/nodes/pve2/qemu", data={**data, "pool": POOL})
    assert error(again) == "unable to create VM 510 - VM 510 already exists on node 'pve1'"


async def test_smbios1_update_without_uuid_keeps_the_uuid(ci: httpx.AsyncClient) -> None:
    vmid = await new_vm(ci, 507)
    before = (await ok(await ci.get(CONFIG.format(vmid=vmid))))["smbios1"]
    await ok(
        await ci.put(CONFIG.format(vmid=vmid), data={"smbios1": f"serial={b64('x-1')},base64=1"})
    )
    after = (await ok(await ci.get(CONFIG.format(vmid=vmid))))["smbios1"]
    assert after.split(",")[0] == before.split(",")[0]
    assert after.startswith("uuid=")


async def test_create_ha_managed_on_9x(ci: httpx.AsyncClient, sim: Simulator) -> None:
    if sim.version == "8.4":
        data = {"vmid": 511, "pool": POOL, "ha-managed": 1}
        assert error(await ci.post("/nodes/pve1/qemu", data=data), 400)
        return
    data = {"vmid": 511, "pool": POOL, "memory": "1024", "ha-managed": 1}
    assert (await run(ci, await ci.post("/nodes/pve1/qemu", data=data)))["exitstatus"] == "OK"
    assert sim.cluster.ha[511].state == "stopped"
