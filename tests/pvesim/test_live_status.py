"""A VM's live figures over HTTP: status/current, the node's VM list and /cluster/resources
read one source and agree (qemu-server `vmstatus`, pvestatd)."""

from __future__ import annotations

from typing import Any

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.modelkit import ok, run

POOL = "OpenVLE-VMs"
QEMU = {"9.1": ("10.1.2", "pc-i440fx-10.1+pve0"), "8.4": ("9.2.0", "pc-i440fx-9.2+pve1")}


async def running_clone(client: httpx.AsyncClient, newid: int, **config: str) -> int:
    data = {"newid": newid, "pool": POOL, "name": f"live-{newid}"}
    clone = await client.post("/nodes/pve1/qemu/9000/clone", data=data)
    assert (await run(client, clone))["exitstatus"] == "OK"
    if config:
        await ok(await client.put(f"/nodes/pve1/qemu/{newid}/config", data=config))
    start = await client.post(f"/nodes/pve1/qemu/{newid}/status/start")
    assert (await run(client, start))["exitstatus"] == "OK"
    return newid


async def current(client: httpx.AsyncClient, vmid: int) -> dict[str, Any]:
    data: dict[str, Any] = await ok(await client.get(f"/nodes/pve1/qemu/{vmid}/status/current"))
    return data


async def test_running_vm_reports_balloon_devices_and_qemu(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    vmid = await running_clone(ci, 310)
    status = await current(ci, vmid)
    assert status["pid"] > 0
    assert (status["running-qemu"], status["running-machine"]) == QEMU[sim.version]
    assert status["qmpstatus"] == "running"
    assert status["proxmox-support"]["pbs-dirty-bitmap"] is True
    info = status["ballooninfo"]
    assert info["max_mem"] == status["maxmem"] == 2048 * 1024**2
    assert status["mem"] == info["total_mem"] - info["free_mem"] > 0
    assert status["freemem"] == info["free_mem"]
    assert status["balloon"] == info["actual"]
    assert set(status["nics"]) == {f"tap{vmid}i0"}
    assert status["netin"] == status["nics"][f"tap{vmid}i0"]["netin"] > 0
    assert set(status["blockstat"]) == {"scsi0", "ide2"}
    assert status["diskread"] == sum(b["rd_bytes"] for b in status["blockstat"].values()) > 0
    assert status["diskwrite"] == sum(b["wr_bytes"] for b in status["blockstat"].values())
    assert status["blockstat"]["ide2"]["wr_bytes"] == 0  # the cloud-init CD-ROM
    pressure = {k for k in status if k.startswith("pressure")}
    assert len(pressure) == (6 if sim.version == "9.1" else 0)
    assert ("memhost" in status) == (sim.version == "9.1")
    if sim.version == "9.1":
        assert status["memhost"] == status["maxmem"] // 2  # the host's share, see usage
        assert status["mem"] < status["memhost"]


async def test_stopped_vm_has_no_process_figures(ci: httpx.AsyncClient) -> None:
    status = await current(ci, 9000)
    assert status["status"] == status["qmpstatus"] == "stopped"
    assert (status["cpu"], status["mem"], status["netin"], status["uptime"]) == (0, 0, 0, 0)
    for key in ("pid", "diskread", "nics", "blockstat", "running-qemu", "ballooninfo"):
        assert key not in status
    assert status["template"] == 1


async def test_display_machine_and_balloon_settings_show(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    vmid = await running_clone(ci, 311, vga="qxl,clipboard=vnc", machine="q35", balloon="0")
    status = await current(ci, vmid)
    assert (status["spice"], status["clipboard"]) == (1, "vnc")
    version = "10.1+pve0" if sim.version == "9.1" else "9.2+pve1"
    assert status["running-machine"] == f"pc-q35-{version}"
    assert "ballooninfo" not in status  # balloon: 0 removes the device
    memhost = sim.cluster.usage.memory_of(vmid)
    assert status["mem"] == memhost  # the cgroup figure stands without a balloon


async def test_node_vm_list_carries_the_live_figures(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await running_clone(ci, 312)
    listed = {v["vmid"]: v for v in await ok(await ci.get("/nodes/pve1/qemu"))}
    item = listed[vmid]
    status = await current(ci, vmid)
    assert item["pid"] == status["pid"]
    assert item["mem"] == sim.cluster.usage.memory_of(vmid) > 0  # no QMP: the cgroup figure
    assert item["cpu"] > 0
    assert item["netin"] > 0
    assert "diskread" not in item
    assert "qmpstatus" not in item
    full = {v["vmid"]: v for v in await ok(await ci.get("/nodes/pve1/qemu", params={"full": 1}))}
    assert full[vmid]["diskread"] > 0
    assert full[vmid]["mem"] == status["mem"]  # with QMP: the balloon driver's figure
    assert listed[9000]["status"] == "stopped"


async def test_cluster_resources_show_the_same_figures_a_tick_later(
    ci: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.cluster.autotick = False
    vmid = await running_clone(ci, 313)
    before = await ok(await ci.get("/cluster/resources", params={"type": "vm"}))
    assert next(e for e in before if e["vmid"] == vmid)["status"] == "unknown"
    sim.cluster.tick()
    resources = await ok(await ci.get("/cluster/resources", params={"type": "vm"}))
    entry = next(e for e in resources if e["vmid"] == vmid)
    status = await current(ci, vmid)
    assert entry["status"] == "running"
    assert entry["mem"] == status["mem"] > 0
    assert entry["maxcpu"] == status["cpus"]
    for counter in ("netin", "netout", "diskread", "diskwrite"):
        assert entry[counter] <= status[counter]  # counters only grow
    assert entry["netin"] > 0  # DHCP at least
    assert entry["diskread"] > 0  # the boot
    if sim.version == "9.1":
        assert entry["memhost"] == status["memhost"]


async def test_a_background_stats_round_lets_requests_in_between_its_slices() -> None:
    """pvestatd never holds pveproxy back: the background round yields every
    TICK_SLICE VMs, and ends with the same entries as one `tick()`."""
    import asyncio

    from openvle_pvesim import run_simulator
    from openvle_pvesim.cluster import TICK_SLICE

    async with run_simulator(version="9.1", vms=2 * TICK_SLICE + 10) as sim:
        cluster = sim.cluster
        cluster.autotick = False
        turns = 0
        done = asyncio.Event()

        async def other() -> None:
            nonlocal turns
            while not done.is_set():
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        before = turns
        await cluster.tick_in_slices()
        during = turns - before
        done.set()
        await task
        assert during >= 2  # two slice boundaries at least: others ran in between
        sliced = {vmid: vm.entry for vmid, vm in cluster.vms.items()}
        cluster.tick()
        assert all(entry is not None for entry in sliced.values())
        assert {vmid: vm.entry["status"] for vmid, vm in cluster.vms.items() if vm.entry} == {
            vmid: entry["status"] for vmid, entry in sliced.items() if entry
        }
