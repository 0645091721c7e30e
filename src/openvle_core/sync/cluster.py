"""What the one /cluster/resources call says: our pool's guests and the nodes.

Guests are taken by their `pool` field; when no guest carries one (the token lacks
Pool.Audit) the pool's member list is read instead. Nothing outside the pool is kept,
nor even validated. The answer is taken as plain dicts: a pool guest is validated into
a `ClusterResource` (and its snapshot document made) only when one of the fields the
sync keeps changed since the last sync (`GuestMemo`); at 10,000 guests validating every
entry cost four times the JSON decoding, while about 1 % of them change between syncs.
The answer is decoded straight into `ResourceEntry` structs (`proxmox.resources`, a
quarter of the CPU of decoding it into dicts), whose leading fields are the kept ones:
the memo compares their tuple with the last sync's guest.
What is kept between syncs is a `Guest`, a named tuple of the fields the sync keeps
(about a tenth of a pydantic model's memory), which is also what the next sync's entry
is compared with.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from openvle_core.db.enums import VmStatus
from openvle_core.guests.smbios import serial_of
from openvle_core.proxmox import ProxmoxClient
from openvle_core.proxmox.models import ClusterResource, parse
from openvle_core.proxmox.resources import GUEST_KEPT, ResourceEntry, as_dict, kept

GUEST_TYPES = frozenset({"qemu", "lxc"})
# Locks that mean Proxmox itself is moving the guest between states: leave it alone.
BUSY_LOCKS = frozenset({"clone", "create", "migrate", "rollback", "destroyed"})
MIB = 1024**2
# A running guest's usage moves on every pvestatd tick (10 s): kept, it would make every
# sync rewrite every running VM's snapshot document. The snapshot holds state (status,
# node, lock, sizes); usage over time is the metrics exporters' business.
GUEST_USAGE = frozenset({"cpu", "mem", "disk", "uptime"})
Document = dict[str, Any]


class Guest(NamedTuple):
    """A pool guest of /cluster/resources, validated (through `ClusterResource`), as the
    sync keeps it between syncs: the fields a guest entry carries, but its usage."""

    id: str
    type: str
    node: str | None
    vmid: int | None
    name: str | None
    status: str | None
    template: bool
    pool: str | None
    lock: str | None
    tags: str | None
    hastate: str | None
    maxcpu: float | None
    maxmem: int | None
    maxdisk: int | None

    @classmethod
    def of(cls, resource: ClusterResource) -> Guest:
        """The guest of a validated entry."""
        return cls(*[getattr(resource, name) for name in GUEST_FIELDS])


# The fields of a guest entry the sync keeps (in the guest and the snapshot document).
GUEST_FIELDS = Guest._fields
assert GUEST_FIELDS == GUEST_KEPT, "Guest must hold the fields of GUEST_KEPT, in order"


@dataclass(frozen=True)
class ClusterView:
    """The pool's guests by vmid, the nodes, their storages, and how many entries came back
    in all; `guest_documents`: the guests' snapshot documents when already made;
    `uptimes`: seconds each running pool guest has been up, by vmid (where shown)."""

    guests: dict[int, Guest]
    nodes: list[ClusterResource]
    total: int
    storages: list[ClusterResource] = field(default_factory=list)
    guest_documents: list[Document] | None = None
    uptimes: dict[int, int] = field(default_factory=dict)

    def snapshot_documents(self) -> list[dict[str, Any]]:
        """What the snapshot store keeps: the nodes with their figures, and our pool's guests
        without their usage counters (see `GUEST_USAGE`)."""
        nodes = [r.model_dump(exclude_none=True) for r in self.nodes]
        if self.guest_documents is not None:
            return nodes + self.guest_documents
        return nodes + [guest_document(g) for g in self.guests.values()]


def guest_document(guest: Guest) -> Document:
    """The snapshot document of a guest: its fields but those it lacks."""
    return {name: v for name, v in zip(GUEST_FIELDS, guest, strict=True) if v is not None}


@dataclass
class GuestMemo:
    """PVE id -> (the guest validated from the last sync's entry, its snapshot document);
    entries no longer sent are dropped each sync."""

    entries: dict[str, tuple[Guest, Document]] = field(default_factory=dict)
    parsed: int = 0  # entries validated by the last `take`

    def take(self, entries: Sequence[ResourceEntry]) -> list[tuple[Guest, Document]]:
        """Each entry as a guest and its document: remembered when its kept fields equal
        the guest's (validation only coerces equal values: 1 to True, 2 to 2.0), else
        validated (a bad one is `ProxmoxBadResponse`)."""
        taken: dict[str, tuple[Guest, Document]] = {}
        self.parsed = 0
        known_entries = self.entries.get
        for entry in entries:
            sent = kept(entry)
            known = known_entries(entry.id)
            if known is None or known[0] != sent:
                fields = {f: v for f, v in zip(GUEST_FIELDS, sent, strict=True) if v is not None}
                guest = Guest.of(parse(ClusterResource, fields))
                known = (guest, guest_document(guest))
                self.parsed += 1
            taken[entry.id] = known
        self.entries = taken
        return list(taken.values())


_MEMOS: weakref.WeakKeyDictionary[ProxmoxClient, GuestMemo] = weakref.WeakKeyDictionary()


def guest_memo(proxmox: ProxmoxClient) -> GuestMemo:
    """The guest memo of this client (one cluster, one pool)."""
    memo = _MEMOS.get(proxmox)
    if memo is None:
        memo = _MEMOS[proxmox] = GuestMemo()
    return memo


async def fetch_cluster(proxmox: ProxmoxClient, pool: str) -> ClusterView:
    """One GET /cluster/resources, split into our pool's guests and the nodes."""
    entries = await proxmox.cluster_resource_entries()
    # one pass over every entry (`pool` first: it rules out the other pools' guests)
    ours = [e for e in entries if e.pool == pool and e.type in GUEST_TYPES and e.vmid is not None]
    by_pool_field = bool(ours) or any(e.pool is not None and e.type in GUEST_TYPES for e in entries)
    if not by_pool_field:  # no guest carries its pool (no Pool.Audit): the pool's member list says
        members = {m.vmid for m in (await proxmox.get_pool()).members if m.vmid is not None}
        ours = [
            e for e in entries if e.type in GUEST_TYPES and e.vmid is not None and e.vmid in members
        ]
    taken = guest_memo(proxmox).take(ours)
    guests = {guest.vmid: guest for guest, _document in taken if guest.vmid is not None}
    if by_pool_field:
        proxmox.remember_members(pool, {vmid: guest.node for vmid, guest in guests.items()})
    others = [parse(ClusterResource, as_dict(e)) for e in entries if e.type in {"node", "storage"}]
    return ClusterView(
        guests=guests,
        nodes=[r for r in others if r.type == "node" and r.node],
        total=len(entries),
        storages=[r for r in others if r.type == "storage" and r.node and r.storage],
        guest_documents=[document for _guest, document in taken],
        uptimes={
            e.vmid: e.uptime for e in ours if e.status == "running" and isinstance(e.uptime, int)
        },
    )


def observed_status(resource: Guest) -> VmStatus | None:
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


def memory_mb(resource: Guest) -> int | None:
    """`maxmem` in MiB (templates show their configured memory here)."""
    return None if resource.maxmem is None else resource.maxmem // MIB


def cores(resource: Guest) -> int | None:
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
