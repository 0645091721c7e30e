"""Pick a VM's IPv4 address from the guest agent's interface list.

The interface must carry net0's MAC (so docker bridges and VPNs inside the guest are not
taken); loopback, link-local and the configured bridge ranges are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, ip_address

from openvle_core.proxmox.models import AgentInterface, Ipv4Lookup

NO_AGENT = "guest agent not configured"
AGENT_DOWN = "guest agent not running"
VM_DOWN = "VM not running"
NO_NET0 = "VM has no net0 MAC address"


def usable_ipv4(address: str, ignored: Iterable[IPv4Network]) -> IPv4Address | None:
    """The address if it is IPv4 and not loopback, link-local or in an ignored range."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return None
    if not isinstance(parsed, IPv4Address) or parsed.is_loopback or parsed.is_link_local:
        return None
    if parsed.is_unspecified or any(parsed in net for net in ignored):
        return None
    return parsed


def pick_ipv4(
    interfaces: Iterable[AgentInterface], mac: str, ignored: Iterable[IPv4Network]
) -> Ipv4Lookup:
    """The first usable IPv4 on the interface whose MAC is `mac` (case-insensitive)."""
    ignored = tuple(ignored)
    wanted = mac.lower()
    for iface in interfaces:
        if (iface.hardware_address or "").lower() != wanted:
            continue
        for addr in iface.ip_addresses:
            if addr.ip_address_type != "ipv4":
                continue
            found = usable_ipv4(addr.ip_address, ignored)
            if found is not None:
                return Ipv4Lookup(address=found, interface=iface.name)
        return Ipv4Lookup(interface=iface.name, reason=f"no usable IPv4 on {iface.name} yet")
    return Ipv4Lookup(reason=f"no interface with MAC {mac}")
