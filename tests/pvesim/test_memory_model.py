"""Node memory and storage space follow what exists and runs (the `usage` rule): a running
guest holds half its memory, a start whose full memory does not fit fails as KVM does,
a full clone takes its disk's size on the storage."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from openvle_pvesim import Simulator, run_simulator
from tests.pvesim.kit import ADMIN_TOKEN, MakeSim, pve
from tests.pvesim.modelkit import ok, run, task_log

POOL = "OpenVLE-VMs"
GIB = 1024**3


async def clone(client: httpx.AsyncClient, template: int, newid: int, **data: Any) -> None:
    node = {9000: "pve1", 9001: "pve3", 9002: "pve2"}[template]
    params = {"newid": newid, "pool": POOL, "name": f"m-{newid}", **data}
    status = await run(
        client, await client.post(f"/nodes/{node}/qemu/{template}/clone", data=params)
    )
    assert status["exitstatus"] == "OK", status


async def power(client: httpx.AsyncClient, node: str, vmid: int, action: str) -> dict[str, Any]:
    return await run(client, await client.post(f"/nodes/{node}/qemu/{vmid}/status/{action}"))


async def used(client: httpx.AsyncClient, node: str) -> int:
    status = await ok(await client.get(f"/nodes/{node}/status"))
    return int(status["memory"]["used"])


async def test_start_takes_half_the_memory_and_stop_frees_it(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(ci, 9001, 320)  # 4 GiB
    idle = await used(ci, "pve3")
    assert (await power(ci, "pve3", 320, "start"))["exitstatus"] == "OK"
    assert await used(ci, "pve3") == idle + 2 * GIB
    sim.cluster.tick()
    nodes = {n["node"]: n for n in await ok(await ci.get("/nodes"))}
    assert nodes["pve3"]["mem"] == idle + 2 * GIB  # the pvestatd view after its round
    assert (await power(ci, "pve3", 320, "stop"))["exitstatus"] == "OK"
    assert await used(ci, "pve3") == idle


async def test_a_start_that_does_not_fit_fails_like_kvm(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(ci, 9001, 321)
    await clone(ci, 9001, 322)
    assert (await power(ci, "pve3", 321, "start"))["exitstatus"] == "OK"
    node = sim.cluster.nodes["pve3"]
    node.maxmem = await used(ci, "pve3") + 3 * GIB  # 3 GiB free, the guest wants 4
    failed = await power(ci, "pve3", 322, "start")
    assert failed["exitstatus"] == "start failed: QEMU exited with code 1"
    log = await task_log(ci, failed["upid"])
    assert "kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory" in log
    current = await ok(await ci.get("/nodes/pve3/qemu/322/status/current"))
    assert current["status"] == "stopped"
    assert (await power(ci, "pve3", 321, "stop"))["exitstatus"] == "OK"  # frees 2 GiB
    assert (await power(ci, "pve3", 322, "start"))["exitstatus"] == "OK"  # 5 GiB free now


async def test_memory_is_overcommitted_up_to_the_point_where_it_is_not(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    for vmid in range(330, 336):
        await clone(ci, 9000, vmid)  # 2 GiB each, resident 1 GiB
    sim.cluster.nodes["pve1"].maxmem = await used(ci, "pve1") + 5 * GIB
    results = [(await power(ci, "pve1", vmid, "start"))["exitstatus"] for vmid in range(330, 336)]
    # 5 GiB free: starts need 2 GiB free each and leave 1 GiB used: four fit, then no more
    assert results == ["OK"] * 4 + ["start failed: QEMU exited with code 1"] * 2
    configured = sum(sim.cluster.vms[v].maxmem for v in range(330, 334))
    assert configured > 5 * GIB  # more configured memory runs than was free


async def test_full_clone_takes_space_and_linked_clone_a_tenth(ci: httpx.AsyncClient) -> None:
    def space(storages: list[dict[str, Any]], sid: str) -> tuple[int, int]:
        item = next(s for s in storages if s["storage"] == sid)
        return int(item["used"]), int(item["avail"])

    before = await ok(await ci.get("/nodes/pve1/storage"))
    await clone(ci, 9000, 340, full=1, storage="local-lvm")
    await clone(ci, 9000, 341)
    after = await ok(await ci.get("/nodes/pve1/storage"))
    assert space(after, "local-lvm")[0] == space(before, "local-lvm")[0] + 32 * GIB
    assert space(after, "local-lvm")[1] == space(before, "local-lvm")[1] - 32 * GIB
    assert space(after, "ceph")[0] == space(before, "ceph")[0] + int(32 * GIB * 0.1)
    gone = await run(ci, await ci.delete("/nodes/pve1/qemu/340"))
    assert gone["exitstatus"] == "OK"
    assert space(await ok(await ci.get("/nodes/pve1/storage")), "local-lvm") == space(
        before, "local-lvm"
    )


async def test_extra_vms_get_nodes_large_enough(make_sim: MakeSim) -> None:
    async with make_sim(vms=600) as sim, pve(sim, ADMIN_TOKEN) as admin:
        for node in await ok(await admin.get("/nodes")):
            status = await ok(await admin.get(f"/nodes/{node['node']}/status"))
            assert status["memory"]["free"] >= status["memory"]["total"] // 4


async def test_the_demo_seed_runs_a_300_vm_event_of_its_templates() -> None:
    """100 participants x the three demo templates: Debian and Ubuntu linked clones spread
    over the nodes in turn, Kali on pve2 (local-lvm); every start fits."""
    async with (
        run_simulator(version="9.1", tls=False, check_responses=True) as sim,
        pve(sim, ADMIN_TOKEN) as admin,
    ):
        nodes, placed, vmid = ["pve1", "pve2", "pve3"], [], 1000
        for participant in range(100):
            for template in (9000, 9001, 9002):
                target = "pve2" if template == 9002 else nodes[(participant + template) % 3]
                await clone(admin, template, vmid, full=0, target=target)
                placed.append((target, vmid))
                vmid += 1
        starts = await asyncio.gather(*(power(admin, n, v, "start") for n, v in placed))
        assert [s["exitstatus"] for s in starts] == ["OK"] * 300
        for name, node in sim.cluster.nodes.items():
            assert sim.cluster.node_used(name) < node.maxmem
        assert sim.violations == []
