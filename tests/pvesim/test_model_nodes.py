"""Read endpoints over HTTP: version, nodes, node status and storage, cluster status, resources."""

from __future__ import annotations

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.modelkit import error, ok


async def test_version_per_simulated_release(ci: httpx.AsyncClient, sim: Simulator) -> None:
    version = await ok(await ci.get("/version"))
    assert version["release"] == sim.version
    assert version["version"].startswith(sim.version)


async def test_nodes_have_different_loads(ci: httpx.AsyncClient) -> None:
    nodes = await ok(await ci.get("/nodes"))
    assert [n["node"] for n in nodes] == ["pve1", "pve2", "pve3"]
    assert len({n["cpu"] for n in nodes}) == 3
    assert all(n["status"] == "online" for n in nodes)
    status = await ok(await ci.get("/nodes/pve2/status"))
    assert status["cpu"] == 0.48
    assert status["memory"]["total"] == nodes[1]["maxmem"]
    assert status["pveversion"].startswith("pve-manager/")
    missing = await ci.get("/nodes/pve9/status")
    assert error(missing) == "no such cluster node 'pve9'"


async def test_node_storage_and_vm_list(ci: httpx.AsyncClient) -> None:
    storages = await ok(await ci.get("/nodes/pve2/storage"))
    by_id = {s["storage"]: s for s in storages}
    assert by_id["ceph"]["shared"] == 1
    assert by_id["local-lvm"]["shared"] == 0
    assert by_id["local-lvm"]["used"] == 80 * 1024**3  # the kali template's disk
    assert by_id["local-lvm"]["type"] == "lvmthin"
    vms = await ok(await ci.get("/nodes/pve2/qemu"))
    assert [v["vmid"] for v in vms] == [9002]  # 201 is on pve2 too, but not ours
    assert vms[0]["template"] == 1


async def test_cluster_status_needs_sys_audit_on_root(
    ci: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    status = await ok(await admin.get("/cluster/status"))
    assert status[0]["type"] == "cluster"
    assert status[0]["quorate"] == 1
    assert [s["name"] for s in status[1:]] == ["pve1", "pve2", "pve3"]
    assert (await ci.get("/cluster/status")).status_code == 200  # granted on / (no propagate)


async def test_cluster_resources_shapes_per_version(ci: httpx.AsyncClient, sim: Simulator) -> None:
    everything = await ok(await ci.get("/cluster/resources"))
    kinds = {e["type"] for e in everything}
    assert kinds == {"qemu", "node", "storage", "pool"}  # no SDN.Audit for the token
    template = next(e for e in everything if e.get("vmid") == 9000)
    assert template["pool"] == "OpenVLE-VMs"
    assert template["template"] == 1
    assert ("memhost" in template) == (sim.version != "8.4")
    storage = await ok(await ci.get("/cluster/resources", params={"type": "storage"}))
    assert {s["id"] for s in storage} >= {"storage/pve1/ceph", "storage/pve3/local-lvm"}
    bad = await ci.get("/cluster/resources", params={"type": "pool"})
    assert error(bad, 400) == "Parameter verification failed."


async def test_nextid_with_free_vmid(ci: httpx.AsyncClient) -> None:
    assert await ok(await ci.get("/cluster/nextid", params={"vmid": 4242})) == "4242"
    assert await ok(await ci.get("/cluster/nextid")) == "100"


async def test_nodes_list_items_have_the_resource_fields(admin: httpx.AsyncClient) -> None:
    nodes = await ok(await admin.get("/nodes"))
    first = next(n for n in nodes if n["node"] == "pve1")
    assert (first["id"], first["type"]) == ("node/pve1", "node")
    assert 0 < first["disk"] < first["maxdisk"]
    status = await ok(await admin.get("/nodes/pve1/status"))
    assert status["pveversion"].count("/") == 2
    assert "pve" not in status["pveversion"].rsplit("/", 1)[1]  # the repoid, no kernel
