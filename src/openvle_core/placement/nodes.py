"""Where a new clone goes: filters, then a weigher (as OpenStack Nova's scheduler).

Pure functions over plain figures (the caller reads them once per deploy batch):

Filters, each node must pass all:
- **online**;
- **reachable**: a clone's disks stay on the template's storages, so a template whose
  disks are not all on shared storage can only be cloned on its own node;
- **memory**: the node's free memory (total minus in use, minus the memory of our clones
  placed there but not yet in Proxmox's figures) times the overcommit ratio
  (`PVE_MEMORY_OVERCOMMIT`, as Nova's RAM allocation ratio) covers the VM's memory;
- **storage**: a full clone needs room for the template's disks on each target storage
  (a linked clone shares the template's base image and takes no room up front).

Weigher: the most free CPU cores (the seed's rule): maxcpu x (1 - cpu), minus the cores of
our clones placed there but not yet visible. A single CPU sample of exactly 0 on a node is
not trusted (PVE sometimes reports it): the last known load is used instead. Ties go to
the alphabetically first node, for stable results. No node passes: `NoCapacity` says what
each node lacked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from openvle_core.placement.errors import NoCapacity

MIB = 1024**2


@dataclass(frozen=True)
class NodeFigures:
    """A node as Proxmox last showed it."""

    name: str
    online: bool
    cpu: float  # fraction of its CPUs in use
    maxcpu: int
    mem_mb: int  # memory in use
    maxmem_mb: int


@dataclass(frozen=True)
class StorageFigures:
    """One storage as one node sees it (a shared storage appears once per node)."""

    storage: str
    node: str
    shared: bool
    avail_mb: int


@dataclass(frozen=True)
class CloneNeeds:
    """What one clone asks of its node: the template's memory, cores and disks."""

    memory_mb: int
    cores: int
    template_node: str
    storages: frozenset[str]  # where the template's disks are
    shared: bool  # every one of them is shared storage
    full: bool
    disk_mb: int = 0  # the template's disks in all (what a full clone copies)


@dataclass
class Pending:
    """Our clones placed per node but not yet in Proxmox's figures."""

    cores: dict[str, float] = field(default_factory=dict)
    memory_mb: dict[str, int] = field(default_factory=dict)
    disk_mb: dict[tuple[str, str], int] = field(default_factory=dict)  # (storage, node)

    def add(self, node: str, needs: CloneNeeds) -> None:
        """Count one more clone placed on `node`."""
        self.cores[node] = self.cores.get(node, 0.0) + needs.cores
        self.memory_mb[node] = self.memory_mb.get(node, 0) + needs.memory_mb
        if needs.full:
            for storage in needs.storages:
                key = (storage, node)
                self.disk_mb[key] = self.disk_mb.get(key, 0) + needs.disk_mb


@dataclass(frozen=True)
class ClusterFigures:
    """Every node and storage as one read showed them (`read_at`: monotonic seconds)."""

    nodes: list[NodeFigures]
    storages: dict[tuple[str, str], StorageFigures]
    read_at: float = 0.0


def effective_cpu(node: NodeFigures, previous: Mapping[str, float]) -> float:
    """The CPU fraction to trust: a zero sample falls back to the last known load."""
    if node.cpu <= 0.0 and previous.get(node.name, 0.0) > 0.0:
        return previous[node.name]
    return node.cpu


def free_cores(node: NodeFigures, pending: Pending, previous: Mapping[str, float]) -> float:
    """Cores free on `node` after counting clones placed there but not yet visible."""
    used = effective_cpu(node, previous)
    return node.maxcpu * (1.0 - used) - pending.cores.get(node.name, 0.0)


def free_memory_mb(node: NodeFigures, pending: Pending) -> int:
    """Memory free on `node` after counting clones placed there but not yet visible."""
    return node.maxmem_mb - node.mem_mb - pending.memory_mb.get(node.name, 0)


def storage_room_mb(
    storage: str, node: str, storages: Mapping[tuple[str, str], StorageFigures], pending: Pending
) -> int | None:
    """Room left on `storage` as `node` sees it (None: the node has no such storage)."""
    figures = storages.get((storage, node))
    if figures is None:
        return None
    taken = sum(
        mb
        for (sid, owner), mb in pending.disk_mb.items()
        if sid == storage and (owner == node or figures.shared)
    )
    return figures.avail_mb - taken


def rejection(
    node: NodeFigures,
    needs: CloneNeeds,
    storages: Mapping[tuple[str, str], StorageFigures],
    pending: Pending,
    overcommit: float,
) -> str | None:
    """Why `node` cannot take the clone, in words; None if it passes every filter."""
    if not node.online or node.maxcpu <= 0:
        return "offline"
    if not needs.shared and node.name != needs.template_node:
        return f"the template's disks are on local storage of {needs.template_node}"
    free = free_memory_mb(node, pending)
    if free * overcommit < needs.memory_mb:
        return f"memory: {free:,} MiB free x {overcommit:g} overcommit < {needs.memory_mb:,} MiB"
    if needs.full:
        for storage in sorted(needs.storages):
            room = storage_room_mb(storage, node.name, storages, pending)
            if room is None:
                return f"storage {storage} is not available on {node.name}"
            if room < needs.disk_mb:
                return f"storage {storage}: {room:,} MiB free < {needs.disk_mb:,} MiB to copy"
    return None


def choose_node(
    nodes: Sequence[NodeFigures],
    needs: CloneNeeds,
    *,
    storages: Mapping[tuple[str, str], StorageFigures],
    pending: Pending,
    previous: Mapping[str, float],
    overcommit: float,
) -> str:
    """The node for one clone (filters, then the most free cores); NoCapacity if none."""
    rejected: dict[str, str] = {}
    passing: list[NodeFigures] = []
    for node in nodes:
        reason = rejection(node, needs, storages, pending, overcommit)
        if reason is None:
            passing.append(node)
        else:
            rejected[node.name] = reason
    if not passing:
        raise NoCapacity(rejected)
    best, most = passing[0], free_cores(passing[0], pending, previous)
    for node in passing[1:]:  # the most free cores; among equals the first name
        free = free_cores(node, pending, previous)
        if free > most or (free == most and node.name < best.name):
            best, most = node, free
    return best.name


def storage_index(storages: Sequence[StorageFigures]) -> dict[tuple[str, str], StorageFigures]:
    """Storages by (storage id, node), as `choose_node` looks them up."""
    return {(s.storage, s.node): s for s in storages}
