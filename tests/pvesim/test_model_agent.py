"""The simulated guest agent: modes, errors, interfaces, DHCP delay, per-version privileges."""

from __future__ import annotations

import ipaddress

import httpx

from openvle_pvesim import Simulator
from openvle_pvesim.agent import dhcp_address, link_local
from openvle_pvesim.model import VM
from tests.pvesim.kit import MakeSim, pve
from tests.pvesim.modelkit import error, ok, run

POOL = "OpenVLE-VMs"
IFACES = "/nodes/pve1/qemu/{vmid}/agent/network-get-interfaces"


async def running_vm(client: httpx.AsyncClient, newid: int, **config: str) -> int:
    data = {"newid": newid, "pool": POOL, "name": f"agent-{newid}"}
    await run(client, await client.post("/nodes/pve1/qemu/9000/clone", data=data))
    if config:
        await ok(await client.put(f"/nodes/pve1/qemu/{newid}/config", data=config))
    await run(client, await client.post(f"/nodes/pve1/qemu/{newid}/status/start"))
    return newid


def addresses(interfaces: list[dict[str, object]], name: str) -> list[str]:
    iface = next(i for i in interfaces if i["name"] == name)
    ips = iface["ip-addresses"]
    assert isinstance(ips, list)
    return [a["ip-address"] for a in ips]


async def test_running_agent_reports_static_address(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await running_vm(ci, 400, ipconfig0="ip=10.30.0.5/24,gw=10.30.0.1")
    assert await ok(await ci.post(f"/nodes/pve1/qemu/{vmid}/agent/ping")) == {"result": {}}
    result = (await ok(await ci.get(IFACES.format(vmid=vmid))))["result"]
    assert [i["name"] for i in result] == ["lo", "eth0", "docker0"]
    assert addresses(result, "lo") == ["127.0.0.1", "::1"]
    assert addresses(result, "docker0") == ["172.17.0.1"]
    mac = sim.cluster.vms[vmid].config["net0"].split(",")[0].split("=")[1].lower()
    eth0 = next(i for i in result if i["name"] == "eth0")
    assert eth0["hardware-address"] == mac
    assert addresses(result, "eth0") == ["10.30.0.5", link_local(mac)]
    assert link_local(mac).startswith("fe80::")
    osinfo = (await ok(await ci.get(f"/nodes/pve1/qemu/{vmid}/agent/get-osinfo")))["result"]
    assert osinfo["id"] == "debian"


async def test_dhcp_address_appears_after_the_boot_delay(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=0.002) as sim, pve(sim) as ci:
        vmid = await running_vm(ci, 401)
        vm = sim.cluster.vms[vmid]
        vm.started_at += 1000  # just booted, as far as the guest is concerned
        early = (await ok(await ci.get(IFACES.format(vmid=vmid))))["result"]
        assert [a for a in addresses(early, "eth0") if not a.startswith("fe80")] == []
        vm.started_at -= 2000  # the boot delay has passed
        later = (await ok(await ci.get(IFACES.format(vmid=vmid))))["result"]
        assert addresses(later, "eth0")[0].startswith("10.20.")


async def test_agent_errors(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await running_vm(ci, 402)
    sim.cluster.set_agent(vmid, "stopped")
    ping = await ci.post(f"/nodes/pve1/qemu/{vmid}/agent/ping")
    assert error(ping) == "QEMU guest agent is not running"
    sim.cluster.set_agent(vmid, "none")
    assert error(await ci.get(IFACES.format(vmid=vmid))) == "No QEMU guest agent configured"
    sim.cluster.set_agent(vmid, "running")
    await run(ci, await ci.post(f"/nodes/pve1/qemu/{vmid}/status/stop"))
    assert error(await ci.get(IFACES.format(vmid=vmid))) == f"VM {vmid} is not running"


async def test_agent_not_running_fault(make_sim: MakeSim) -> None:
    async with make_sim(faults="agent_not_running=403:n=1") as sim, pve(sim) as ci:
        vmid = await running_vm(ci, 403)
        assert error(await ci.post(f"/nodes/pve1/qemu/{vmid}/agent/ping")) == (
            "QEMU guest agent is not running"
        )
        assert await ok(await ci.post(f"/nodes/pve1/qemu/{vmid}/agent/ping")) == {"result": {}}


async def test_agent_shutdown_powers_the_guest_off(ci: httpx.AsyncClient, sim: Simulator) -> None:
    vmid = await running_vm(ci, 404)
    assert await ok(await ci.post(f"/nodes/pve1/qemu/{vmid}/agent/shutdown")) == {"result": {}}
    assert sim.cluster.vms[vmid].running is False


async def test_agent_privilege_differs_per_version(sim: Simulator) -> None:
    """A role without the version's agent privilege is refused by the schema check."""
    access = sim.cluster.access
    privs = ["VM.Audit", "VM.PowerMgmt"]
    agent_priv = "VM.Monitor" if sim.version == "8.4" else "VM.GuestAgent.Audit"
    access.add_role("NoAgent", privs)
    access.add_role("Agent", [*privs, agent_priv])
    access.add_token("probe@pve!tk", "probe-secret", False)
    access.set_acl("/vms", "probe@pve", "NoAgent")
    wanted = "VM.Monitor" if sim.version == "8.4" else agent_priv + "|VM.GuestAgent.Unrestricted"
    auth = {"Authorization": "PVEAPIToken=probe@pve!tk=probe-secret"}
    async with pve(sim, None, headers=auth) as probe:
        refused = await probe.get("/nodes/pve1/qemu/200/agent/get-osinfo")
        assert error(refused, 403) == f"Permission check failed (/vms/200, {wanted})"
        access.set_acl("/vms", "probe@pve", "Agent")
        allowed = await probe.get("/nodes/pve1/qemu/200/agent/get-osinfo")
        assert (await ok(allowed))["result"]["id"] == "debian"


async def test_dhcp_leases_are_unique_host_addresses(make_sim: MakeSim) -> None:
    """vmids 256 and 257 (and 65024 apart) used to share an address; .0 and .255 were
    handed out."""
    async with make_sim(seed="empty") as sim:
        cluster = sim.cluster
        vms = [VM(vmid, "pve1", {}) for vmid in (253, 256, 257, 511, 512, 65_024 + 256)]
        addresses = [dhcp_address(cluster, vm) for vm in vms]
        assert len(set(addresses)) == len(addresses)
        for address in addresses:
            host = ipaddress.ip_address(address)
            assert host in ipaddress.ip_network("10.20.0.0/16")
            assert int(address.rsplit(".", 1)[1]) not in (0, 1, 255)
        assert dhcp_address(cluster, vms[1]) == addresses[1]  # stable per VM
