"""The simulated QEMU guest agent: availability errors and what a running agent reports.

A VM's agent is not configured (no `agent` in the config), configured but not running
(`VM.agent_running` False, or the `agent_not_running` fault), or running. A running agent
reports lo, docker0 and the net0 NIC with a link-local IPv6 and either the cloud-init
static IPv4 (`ipconfig0`) or, after the boot delay, a lease from the simulated DHCP range.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from openvle_pvesim.errors import PVEError
from openvle_pvesim.vmconfig import net_mac, parse_props, static_ip

if TYPE_CHECKING:
    from openvle_pvesim.model import VM, ClusterState

DHCP_BOOT_DELAY = 15.0
DHCP_PREFIX = "10.20"
LEASE_SLOTS = 256 * 253


def require_agent(cluster: ClusterState, vm: VM) -> None:
    """PVE's checks before a QGA command, in PVE's order, then guest-ping."""
    if "agent" not in vm.config:
        raise PVEError(500, "No QEMU guest agent configured")
    if not vm.running:
        raise PVEError(500, f"VM {vm.vmid} is not running")
    if parse_props(str(vm.config["agent"]), "enabled").get("enabled") != "1":
        raise PVEError(500, "QEMU guest agent is not enabled")
    fault = cluster.faults.take("agent_not_running", str(vm.vmid))
    if not vm.agent_running or fault is not None:
        raise PVEError(500, fault or "QEMU guest agent is not running")


def dhcp_address(cluster: ClusterState, vm: VM) -> str:
    """The VM's lease from the simulated 10.20.0.0/16 range: stable per VM, unique.

    Hosts .2-.254 of each /24 (no network, broadcast or gateway-looking address even for
    clients that treat the range as /24s); the first choice follows the vmid and a taken
    address moves on to the next free one. The lease is kept until the VM is destroyed.
    """
    known = cluster.leases.get(vm.vmid)
    if known is not None:
        return known
    for step in range(LEASE_SLOTS):
        address = _slot_address((vm.vmid + step) % LEASE_SLOTS)
        if address not in cluster.lease_holders:
            cluster.leases[vm.vmid] = address
            cluster.lease_holders[address] = vm.vmid
            return address
    raise PVEError(500, "DHCP range exhausted")


def _slot_address(slot: int) -> str:
    return f"{DHCP_PREFIX}.{slot // 253}.{slot % 253 + 2}"


def ipv4_of(cluster: ClusterState, vm: VM) -> tuple[str, int] | None:
    """The guest's IPv4 on net0: static from cloud-init, else DHCP after the boot delay."""
    static = static_ip(vm.config)
    if static is not None:
        return static
    if vm.dhcp_ip is None and time.time() - vm.started_at >= cluster.scaled(DHCP_BOOT_DELAY):
        vm.dhcp_ip = dhcp_address(cluster, vm)
    return (vm.dhcp_ip, 16) if vm.dhcp_ip else None


def link_local(mac: str) -> str:
    """The EUI-64 link-local IPv6 address for a MAC."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    groups = [f"{b[0]:02x}{b[1]:02x}", f"{b[2]:02x}ff", f"fe{b[3]:02x}", f"{b[4]:02x}{b[5]:02x}"]
    return "fe80::" + ":".join(g.lstrip("0") or "0" for g in groups)


def _addr(ip: str, kind: str, prefix: int) -> dict[str, Any]:
    return {"ip-address": ip, "ip-address-type": kind, "prefix": prefix}


def _iface(name: str, mac: str, addrs: list[dict[str, Any]], vmid: int) -> dict[str, Any]:
    """One interface; its counters differ per interface and per VM."""
    scale = (vmid * 31 + sum(name.encode()) * 7) % 997 + 1
    stats = {
        "rx-bytes": 1834 * scale,
        "rx-dropped": 0,
        "rx-errs": 0,
        "rx-packets": 23 * scale,
        "tx-bytes": 1532 * scale,
        "tx-dropped": 0,
        "tx-errs": 0,
        "tx-packets": 19 * scale,
    }
    return {"name": name, "hardware-address": mac, "ip-addresses": addrs, "statistics": stats}


def network_interfaces(cluster: ClusterState, vm: VM) -> list[dict[str, Any]]:
    """QGA guest-network-get-interfaces for a running agent."""
    lo = [_addr("127.0.0.1", "ipv4", 8), _addr("::1", "ipv6", 128)]
    mac = (net_mac(str(vm.config.get("net0", ""))) or "bc:24:11:00:00:01").lower()
    eth_addrs = []
    ipv4 = ipv4_of(cluster, vm)
    if ipv4 is not None:
        eth_addrs.append(_addr(ipv4[0], "ipv4", ipv4[1]))
    eth_addrs.append(_addr(link_local(mac), "ipv6", 64))
    docker = [_addr("172.17.0.1", "ipv4", 16)]
    return [
        _iface("lo", "00:00:00:00:00:00", lo, vm.vmid),
        _iface("eth0", mac, eth_addrs, vm.vmid),
        _iface("docker0", "02:42:6b:1f:3c:aa", docker, vm.vmid),
    ]


def osinfo(vm: VM) -> dict[str, Any]:
    """QGA guest-get-osinfo: a Debian guest unless the name says otherwise."""
    name = vm.name.lower()
    if "ubuntu" in name:
        pretty, os_id, version = "Ubuntu 24.04.2 LTS", "ubuntu", "24.04"
    elif "kali" in name:
        pretty, os_id, version = "Kali GNU/Linux Rolling", "kali", "2025.1"
    else:
        pretty, os_id, version = "Debian GNU/Linux 12 (bookworm)", "debian", "12"
    return {
        "id": os_id,
        "kernel-release": "6.1.0-31-amd64",
        "kernel-version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.128-1 (2025-02-07)",
        "machine": "x86_64",
        "name": pretty.split(" ")[0],
        "pretty-name": pretty,
        "version": version,
        "version-id": version,
    }
