"""Pools (?poolid= and the deprecated /pools/{poolid}) and HA resources, rules and groups."""

from __future__ import annotations

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.modelkit import error, ok, run

POOL = "OpenVLE-VMs"


async def test_pool_read_forms(ci: httpx.AsyncClient) -> None:
    pools = await ok(await ci.get("/pools"))
    assert [p["poolid"] for p in pools] == [POOL]  # Other-Team is not visible
    [pool] = await ok(await ci.get("/pools", params={"poolid": POOL}))
    assert pool["poolid"] == POOL
    assert {m["vmid"] for m in pool["members"]} == {9000, 9001, 9002}
    assert all(m["id"] == f"qemu/{m['vmid']}" for m in pool["members"])
    deprecated = await ok(await ci.get(f"/pools/{POOL}"))
    assert "poolid" not in deprecated
    assert {m["vmid"] for m in deprecated["members"]} == {9000, 9001, 9002}
    other = await ci.get("/pools", params={"poolid": "Other-Team"})
    assert error(other, 403) == "Permission check failed (/pool/Other-Team, Pool.Audit)"


async def test_pool_update_add_move_remove(admin: httpx.AsyncClient, sim: Simulator) -> None:
    assert await ok(await admin.post("/pools", data={"poolid": "Spare"})) is None
    assert (
        await ok(await admin.put("/pools", data={"poolid": "Spare", "vms": "200", "allow-move": 1}))
        is None
    )
    refused = await admin.put("/pools", data={"poolid": "Spare", "vms": "201"})
    assert error(refused) == (
        "update pools failed: VM 201 belongs already to pool 'Other-Team'"
        " and 'allow-move' is not set"
    )
    assert sim.cluster.pool_of(200) == "Spare"
    dup = await admin.put(f"/pools/{'Spare'}", data={"vms": "200"})
    assert error(dup) == "update pools failed: VM 200 is already a pool member"
    not_empty = await admin.delete("/pools", params={"poolid": "Spare"})
    assert error(not_empty) == "pool 'Spare' is not empty (contains VM 200)"
    remove = {"poolid": "Spare", "vms": "200", "delete": 1}
    assert await ok(await admin.put("/pools", data=remove)) is None
    assert sim.cluster.pool_of(200) is None
    assert await ok(await admin.delete("/pools", params={"poolid": "Spare"})) is None
    missing = await admin.get("/pools", params={"poolid": "Spare"})
    assert error(missing) == "pool 'Spare' does not exist"


async def test_pool_membership_is_what_the_token_sees(
    ci: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    moved = {"poolid": POOL, "vms": "201", "allow-move": 1}
    assert await ok(await admin.put("/pools", data=moved)) is None
    entries = await ok(await ci.get("/cluster/resources", params={"type": "vm"}))
    assert 201 in {e["vmid"] for e in entries}
    assert (await ok(await ci.get("/nodes/pve2/qemu/201/status/current")))["status"] == "running"


async def test_ha_resources_crud(ci: httpx.AsyncClient, sim: Simulator) -> None:
    body = {"sid": "vm:9001", "state": "stopped", "comment": "lab", "max_restart": 2}
    assert await ok(await ci.post("/cluster/ha/resources", data=body)) is None
    dup = await ci.post("/cluster/ha/resources", data={"sid": "9001"})
    assert error(dup) == "resource ID 'vm:9001' already defined"
    missing = await ci.post("/cluster/ha/resources", data={"sid": "vm:777"})
    assert error(missing) == "resource 'vm:777' does not exist in cluster"
    [item] = await ok(await ci.get("/cluster/ha/resources"))
    assert item["sid"] == "vm:9001"
    assert item["state"] == "stopped"
    assert item["max_restart"] == 2
    assert len(item["digest"]) == 40
    await ok(await ci.put("/cluster/ha/resources/vm:9001", data={"delete": "comment"}))
    assert "comment" not in await ok(await ci.get("/cluster/ha/resources/vm:9001"))
    assert await ok(await ci.delete("/cluster/ha/resources/vm:9001")) is None
    again = await ci.delete("/cluster/ha/resources/vm:9001")
    assert error(again) == "cannot delete service 'vm:9001', not HA managed!"


async def test_ha_groups_and_rules_per_version(ci: httpx.AsyncClient, sim: Simulator) -> None:
    if sim.version == "8.4":
        assert await ok(await ci.get("/cluster/ha/groups")) == []
        group = {"group": "lab", "nodes": "pve1,pve2"}
        assert await ok(await ci.post("/cluster/ha/groups", data=group)) is None
        assert [g["group"] for g in await ok(await ci.get("/cluster/ha/groups"))] == ["lab"]
        assert (await ci.get("/cluster/ha/rules")).status_code == 501
        with_group = {"sid": "vm:9000", "group": "lab"}
        assert await ok(await ci.post("/cluster/ha/resources", data=with_group)) is None
        return
    groups = await ci.get("/cluster/ha/groups")
    assert error(groups) == "cannot index groups: ha groups have been migrated to rules"
    create = await ci.post("/cluster/ha/groups", data={"group": "lab", "nodes": "pve1"})
    assert error(create) == "cannot create group: ha groups have been migrated to rules"
    with_group = await ci.post("/cluster/ha/resources", data={"sid": "vm:9000", "group": "lab"})
    assert error(with_group) == "invalid parameter 'group': ha groups have been migrated to rules"
    await ok(await ci.post("/cluster/ha/resources", data={"sid": "vm:9000"}))
    rule = {"rule": "pin", "type": "node-affinity", "resources": "vm:9000", "nodes": "pve1:2,pve2"}
    assert await ok(await ci.post("/cluster/ha/rules", data=rule)) is None
    [listed] = await ok(await ci.get("/cluster/ha/rules"))
    assert listed["rule"] == "pin"
    assert listed["nodes"] == "pve1:2,pve2"
    assert await ok(await ci.delete("/cluster/ha/resources/vm:9000")) is None
    assert (await ok(await ci.get("/cluster/ha/rules/pin")))["resources"] == ""


async def test_ha_migrate_is_indirect(ci: httpx.AsyncClient, sim: Simulator) -> None:
    sim.cluster.autotick = False
    await ok(await ci.post("/cluster/ha/resources", data={"sid": "vm:9001", "state": "stopped"}))
    status = await run(ci, await ci.post("/nodes/pve3/qemu/9001/migrate", data={"target": "pve1"}))
    assert status["type"] == "hamigrate"
    assert sim.cluster.vms[9001].node == "pve3"
    await sim.cluster.ha_round()
    await sim.cluster.tasks.drain()
    assert sim.cluster.vms[9001].node == "pve1"


async def test_pool_members_carry_no_pool_key(admin: httpx.AsyncClient) -> None:
    pools = await ok(await admin.get("/pools", params={"poolid": "OpenVLE-VMs"}))
    members = pools[0]["members"]
    assert members
    assert all("pool" not in m for m in members)


async def test_error_bodies_are_compact_json(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/nodes/nosuch/qemu/1/config")
    assert response.content.startswith(b'{"data":null,"message":')
    assert b", " not in response.content
