"""What the one /cluster/resources call says: our pool's guests and the nodes.

Guests are taken by their `pool` field; when no guest carries one (the token lacks
Pool.Audit) the pool's member list is read instead. Nothing outside the pool is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openvle_core.db.enums import VmStatus
from openvle_core.guests.smbios import serial_of
from openvle_core.proxmox import ProxmoxClient
from openvle_core.proxmox.models import ClusterResource

GUEST_TYPES = frozenset({"qemu", "lxc"})
# Locks that mean Proxmox itself is moving the guest between states: leave it alone.
BUSY_LOCKS = frozenset({"clone", "create", "migrate", "rollback", "destroyed"})
MIB = 1024**2
# A running guest's usage moves on every pvestatd tick (10 s): kept, it would make every
# sync rewrite every running VM's snapshot document. The snapshot holds state (status,
# node, lock, sizes); usage over time is the metrics exporters' business.
GUEST_USAGE = frozenset({"cpu", "mem", "disk", "uptime"})


@dataclass(frozen=True)
class ClusterView:
    """The pool's guests by vmid, the nodes, their storages, and how many entries came back
    in all."""

    guests: dict[int, ClusterResource]
    nodes: list[ClusterResource]
    total: int
    storages: list[ClusterResource] = field(default_factory=list)

    def snapshot_documents(self) -> list[dict[str, Any]]:
        """What the snapshot store keeps: the nodes with their figures, and our pool's guests
        without their usage counters (see `GUEST_USAGE`)."""
        nodes = [r.model_dump(exclude_none=True) for r in self.nodes]
        usage = set(GUEST_USAGE)
        guests = [r.model_dump(exclude_none=True, exclude=usage) for r in self.guests.values()]
        return nodes + guests


async def fetch_cluster(proxmox: ProxmoxClient, pool: str) -> ClusterView:
    """One GET /cluster/resources, split into our pool's guests and the nodes."""
    resources = await proxmox.cluster_resources()
    return await split_resources(proxmox, resources, pool)


async def split_resources(
    proxmox: ProxmoxClient, resources: Sequence[ClusterResource], pool: str
) -> ClusterView:
    """Keep nodes and the guests of `pool` (by `pool` field, else by the pool's members)."""
    guests = [r for r in resources if r.type in GUEST_TYPES and r.vmid is not None]
    if any(r.pool is not None for r in guests):
        ours = {r.vmid: r for r in guests if r.pool == pool and r.vmid is not None}
    else:
        members = {m.vmid for m in (await proxmox.get_pool()).members if m.vmid is not None}
        ours = {r.vmid: r for r in guests if r.vmid in members and r.vmid is not None}
    nodes = [r for r in resources if r.type == "node" and r.node]
    storages = [r for r in resources if r.type == "storage" and r.node and r.storage]
    return ClusterView(guests=ours, nodes=nodes, total=len(resources), storages=storages)


def observed_status(resource: ClusterResource) -> VmStatus | None:
    """Our status for a guest entry; None when Proxmox does not know yet (`unknown`).

    A paused VM shows `running` here (only status/current has `qmpstatus`), so `running`
    is checked separately where the DB says paused. Suspended to disk is `stopped` with
    `lock: suspended`, which we show as paused.
    """
    if resource.status == "running":
        return VmStatus.RUNNING
    if resource.status == "stopped":
        return VmStatus.PAUSED if resource.lock == "suspended" else VmStatus.STOPPED
    return None


def is_locked_busy(resource: ClusterResource) -> bool:
    """True while a Proxmox-side transition (clone, migrate, ...) holds the guest's lock."""
    return resource.lock in BUSY_LOCKS


def memory_mb(resource: ClusterResource) -> int | None:
    """`maxmem` in MiB (templates show their configured memory here)."""
    return None if resource.maxmem is None else resource.maxmem // MIB


def cores(resource: ClusterResource) -> int | None:
    """`maxcpu` as an integer (cores x sockets)."""
    return None if resource.maxcpu is None else int(resource.maxcpu)


def smbios_serial(smbios1: str | None) -> str | None:
    """The SMBIOS serial as a canonical UUID string, if it is one (the clone writes our
    VM UUID there, base64-encoded)."""
    return canonical_uuid(serial_of(smbios1))


def canonical_uuid(text: str | None) -> str | None:
    """`text` as a canonical UUID string, or None if it is not a UUID."""
    if text is None:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
