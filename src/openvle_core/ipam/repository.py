"""All SQL about IP allocations; the unique (network, address) pair is the real guard."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.conflicts import add_unless_conflict
from openvle_core.db.models import IpAllocation


class IpAllocationRepository:
    """IP allocation rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def allocated(self, network: str) -> set[str]:
        """Every address taken in `network` (e.g. "10.0.0.0/24")."""
        stmt = select(IpAllocation.address).where(IpAllocation.network == network)
        return set((await self.session.scalars(stmt)).all())

    async def try_allocate(self, network: str, address: str, vm_id: str | None) -> bool:
        """Claim `address` for `vm_id`; False if someone else holds it (concurrency-safe)."""
        row = IpAllocation(network=network, address=address, vm_id=vm_id)
        return await add_unless_conflict(self.session, row)

    async def for_vm(self, vm_id: str) -> Sequence[IpAllocation]:
        """The addresses held by a VM."""
        stmt = select(IpAllocation).where(IpAllocation.vm_id == vm_id)
        return (await self.session.scalars(stmt.order_by(IpAllocation.id))).all()

    async def release_for_vm(self, vm_id: str) -> int:
        """Free every address of a VM; returns how many."""
        result = await self.session.execute(delete(IpAllocation).where(IpAllocation.vm_id == vm_id))
        return int(getattr(result, "rowcount", 0))

    async def release(self, network: str, address: str) -> bool:
        """Free one address; True if it was taken."""
        stmt = delete(IpAllocation).where(
            IpAllocation.network == network, IpAllocation.address == address
        )
        return bool(getattr(await self.session.execute(stmt), "rowcount", 0))
