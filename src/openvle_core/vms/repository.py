"""All SQL about VMs. Bulk methods serve the sync: work grows with changes, not VMs."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Vm
from openvle_core.db.types import utcnow
from openvle_core.vms.errors import VmNotFound


@dataclass(frozen=True, slots=True)
class VmView:
    """The columns the sync compares with Proxmox, without loading ORM objects."""

    id: str
    vmid: int | None
    name: str
    node: str | None
    status: str
    ipv4: str | None


class VmRepository:
    """VM rows; never commits (the outermost caller does)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, vm_id: str) -> Vm | None:
        """The VM with this UUID, or None."""
        return await self.session.get(Vm, vm_id)

    async def require(self, vm_id: str) -> Vm:
        """The VM with this UUID; VmNotFound otherwise."""
        vm = await self.get(vm_id)
        if vm is None:
            raise VmNotFound(f"VM {vm_id} not found")
        return vm

    async def get_by_vmid(self, vmid: int) -> Vm | None:
        """The VM with this Proxmox vmid, or None."""
        return await self.session.scalar(select(Vm).where(Vm.vmid == vmid))

    async def add(self, vm: Vm) -> Vm:
        """Stage a new VM (flushed so defaults such as the id are set)."""
        self.session.add(vm)
        await self.session.flush()
        return vm

    async def add_many(self, vms: Sequence[Vm]) -> Sequence[Vm]:
        """Stage many new VMs at once (a deploy, adoption by the sync)."""
        self.session.add_all(vms)
        await self.session.flush()
        return vms

    async def for_event(self, event_id: str) -> Sequence[Vm]:
        """Every VM of an event, oldest first."""
        return (
            await self.session.scalars(select(Vm).where(Vm.event_id == event_id).order_by(Vm.id))
        ).all()

    async def count_for_template(self, template_id: str) -> int:
        """How many VMs were cloned from the template (linked clones block its deletion)."""
        stmt = select(func.count()).select_from(Vm).where(Vm.template_id == template_id)
        return int(await self.session.scalar(stmt) or 0)

    async def views(self) -> Sequence[VmView]:
        """Every VM's sync-relevant columns, as plain tuples (cheap at 10,000 rows)."""
        stmt = select(Vm.id, Vm.vmid, Vm.name, Vm.node, Vm.status, Vm.ipv4)
        return [VmView(*row) for row in (await self.session.execute(stmt)).all()]

    async def views_of(self, ids: Collection[str]) -> Sequence[VmView]:
        """The sync-relevant columns of the given VMs (the sync re-checks them before writing)."""
        wanted = sorted(ids)
        columns = (Vm.id, Vm.vmid, Vm.name, Vm.node, Vm.status, Vm.ipv4)
        return [
            VmView(*row)
            for start in range(0, len(wanted), 1000)
            for row in (
                await self.session.execute(
                    select(*columns).where(Vm.id.in_(wanted[start : start + 1000]))
                )
            ).all()
        ]

    async def bulk_update(self, changes: Sequence[Mapping[str, Any]]) -> int:
        """Update many VMs by primary key in one executemany; each mapping has `id`.

        Bypasses the identity map: VM objects already loaded in this session keep their
        old values (call `session.expire_all()` if you still hold some).
        """
        if not changes:
            return 0
        now = utcnow()
        rows = [{**change, "updated_at": now} for change in changes]
        await self.session.execute(update(Vm), rows)
        return len(rows)

    async def delete(self, vm_id: str) -> bool:
        """Delete the row; True if it existed."""
        result = await self.session.execute(delete(Vm).where(Vm.id == vm_id))
        return bool(getattr(result, "rowcount", 0))
