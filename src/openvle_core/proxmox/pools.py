"""Our pool: version-aware pool calls and the membership guard on every VM-level call.

PVE 8.1 moved pools to `/pools?poolid=` (an array) and `PUT /pools`; `/pools/{id}` is the
older form (deprecated since, and 501 for nested ids). The guard keeps the vmids of
`PVE_VMS_POOL` from the last pool or /cluster/resources read; a vmid it does not know
triggers one refresh, and if it is still unknown `OutsidePool` is raised before the
VM-level request is sent. Two instances with different pools never touch each other's VMs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from openvle_core.proxmox.errors import OutsidePool, ProxmoxNotFound
from openvle_core.proxmox.models import Pool, PoolMember, parse
from openvle_core.proxmox.transport import ApiCaller

POOLS_QUERY_SINCE = (8, 1)
GUEST_TYPES = frozenset({"qemu", "lxc"})


class PoolEntry(Protocol):
    """What the guard reads of a /cluster/resources guest (a `ClusterResource`, or the
    sync's compact guest)."""

    @property
    def type(self) -> str: ...
    @property
    def vmid(self) -> int | None: ...
    @property
    def node(self) -> str | None: ...
    @property
    def pool(self) -> str | None: ...


async def read_pool(api: ApiCaller, poolid: str, release: tuple[int, int]) -> Pool:
    """The pool with its members, through the call this PVE version supports."""
    if release >= POOLS_QUERY_SINCE:
        items = await api.get("/pools", {"poolid": poolid})
        if not items:
            raise ProxmoxNotFound(f"pool '{poolid}' does not exist", method="GET", path="/pools")
        return parse(Pool, items[0])
    data = await api.get("/pools/{poolid}", poolid=poolid)
    return parse(Pool, {"poolid": poolid, **data})


async def update_pool(
    api: ApiCaller,
    poolid: str,
    release: tuple[int, int],
    *,
    vms: Iterable[int],
    remove: bool = False,
    allow_move: bool = False,
) -> None:
    """Add `vms` to the pool (or remove them with `remove=True`)."""
    params: dict[str, object] = {"vms": [str(vmid) for vmid in vms], "delete": remove}
    if release >= POOLS_QUERY_SINCE:
        params.update({"poolid": poolid, "allow-move": allow_move or None})
        await api.write("PUT", "/pools", params)
    else:
        await api.write("PUT", "/pools/{poolid}", params, poolid=poolid)


class PoolGuard:
    """Membership cache of our pool; `check(vmid)` passes or raises `OutsidePool`."""

    def __init__(self, poolid: str, reader: Callable[[], Awaitable[Pool]]) -> None:
        self.poolid = poolid
        self._reader = reader
        self._members: dict[int, str | None] = {}
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def members(self) -> dict[int, str | None]:
        """vmid -> node as last seen (a copy)."""
        return dict(self._members)

    def __contains__(self, vmid: int) -> bool:
        return vmid in self._members

    @property
    def generation(self) -> int:
        """Bumped by every full membership read (for single-flight refreshes)."""
        return self._generation

    def node_of(self, vmid: int) -> str | None:
        """The node of a member as last seen ('' if unknown), None for a non-member."""
        if vmid not in self._members:
            return None
        return self._members[vmid] or ""

    async def check(self, vmid: int) -> None:
        """Pass if `vmid` is ours; refresh once on a miss; else raise `OutsidePool`."""
        if vmid in self._members:
            return
        await self.refresh(seen_generation=self._generation)
        if vmid not in self._members:
            raise OutsidePool(vmid, self.poolid)

    async def refresh(self, *, seen_generation: int | None = None) -> None:
        """Re-read the pool; concurrent misses share one read (single flight)."""
        async with self._lock:
            if seen_generation is not None and seen_generation != self._generation:
                return  # someone refreshed while we waited for the lock
            pool = await self._reader()
            self.replace_from_members(pool.members)

    def replace_from_members(self, members: Iterable[PoolMember]) -> None:
        """Take the guest members of a pool read as the new membership."""
        self._set({m.vmid: m.node for m in members if m.type in GUEST_TYPES and m.vmid})

    def replace_from_resources(self, resources: Iterable[PoolEntry]) -> None:
        """Take membership from /cluster/resources guests whose `pool` is ours.

        Entries carry `pool` only with Pool.Audit; without it nothing is learned here and
        the guard falls back to reading the pool on a miss.
        """
        guests = [r for r in resources if r.type in GUEST_TYPES and r.vmid is not None]
        if not any(r.pool is not None for r in guests):
            return
        self._set({r.vmid: r.node for r in guests if r.pool == self.poolid and r.vmid})

    def replace_members(self, pool: str, members: dict[int, str | None]) -> None:
        """Take `members` (vmid -> node) as the new membership, if `pool` is ours: the
        guests a caller found carrying `pool` in /cluster/resources (the dict is kept)."""
        if pool == self.poolid:
            self._set(members)

    def add(self, vmid: int, node: str | None) -> None:
        """Record a VM PVE put into our pool (clone/create with `pool=`, or a move)."""
        self._members[vmid] = node

    def forget(self, vmid: int) -> None:
        """Drop a vmid we deleted or removed from the pool."""
        self._members.pop(vmid, None)

    def _set(self, members: dict[int, str | None]) -> None:
        self._members = members
        self._generation += 1
