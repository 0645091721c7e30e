"""What `openvle follow` shows of an operation: its state, and each of its VMs as it goes.

An event's deploy or archive runs one child operation per VM; each VM is shown in the
phase the API's `GET /operations/{id}/vms` reports (`openvle_core.events.progress`):
queued, cloning, configuring, starting, running with its address; stopping, deleting;
failed with the reason. A VM whose row an archive already removed is shown `deleted`,
under the name its delete recorded. A VM operation (a stop, a clone) is shown the same
way as its one VM. Everything is read from the database the service writes, one short
session per look.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import Operation, Vm
from openvle_core.db.types import utcnow
from openvle_core.events.progress import vm_progress
from openvle_core.events.queries import BatchVms, batch_vms
from openvle_core.events.repository import EventRepository
from openvle_core.operations.journal import Journal
from openvle_core.operations.repository import OperationRepository
from openvle_core.vms.repository import VmRepository

FINISHED = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class OperationView:
    """The operation itself: kind, what it works on, state, VMs done of total."""

    id: str
    kind: str
    target: str
    state: str
    done: int
    total: int
    error: str | None
    started_at: datetime | None = field(default=None, compare=False)
    finished_at: datetime | None = field(default=None, compare=False)

    @property
    def finished(self) -> bool:
        """True once it succeeded or failed."""
        return self.state in FINISHED

    def seconds(self) -> float:
        """Time since it started (until it finished); 0 while queued."""
        if self.started_at is None:
            return 0.0
        return max(((self.finished_at or utcnow()) - self.started_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class VmLine:
    """One VM as shown: `step` is its phase (queued, cloning, configuring, starting,
    running, stopping, deleting ...), or deleted, or failed with `error`."""

    id: str
    name: str
    step: str
    ipv4: str | None = None
    node: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """One look at the operation and its VMs (VMs sorted by name)."""

    op: OperationView
    vms: tuple[VmLine, ...] = ()


async def read_snapshot(
    sessions: async_sessionmaker[AsyncSession], op_id: str, names: dict[str, str]
) -> Snapshot:
    """The operation and its VMs now (OperationNotFound when there is none).

    `names` remembers VM names across looks: an archived VM's row is gone, its name not.
    """
    async with sessions() as session:
        op = await OperationRepository(session).require(op_id)
        batch = await batch_vms(session, op)
        single = await _single_vm(session, op)
        label = await _target_label(session, op)
    if batch is not None:
        lines = batch_lines(batch, names)
    else:
        lines = (single_line(single, op),) if single is not None else ()
    return Snapshot(_operation_view(op, label), lines)


def batch_lines(batch: BatchVms, names: dict[str, str]) -> tuple[VmLine, ...]:
    """Every VM of a deploy or archive in its phase, and those already deleted, by name."""
    present = [VmLine(p.id, p.name, p.phase, p.ipv4, p.node, p.error) for p in vm_progress(batch)]
    names.update({line.id: line.name for line in present})
    gone = [gone_line(vm_id, child, names) for vm_id, child in batch.children.items()]
    known = {line.id for line in present}
    lines = present + [line for line in gone if line.id not in known]
    return tuple(sorted(lines, key=lambda line: (line.name, line.id)))


def gone_line(vm_id: str, child: Row[Any], names: dict[str, str]) -> VmLine:
    """A VM of the batch whose row is gone: deleted (or failed), under its last name."""
    deleted = Journal.model_validate(child.result or {}).deleted_name
    name = names.setdefault(vm_id, deleted) if deleted else names.get(vm_id, vm_id)
    if child.state == "failed":
        return VmLine(vm_id, name, "failed", error=child.error_message)
    return VmLine(vm_id, name, "deleted")


def single_line(vm: Vm, op: Operation) -> VmLine:
    """The one VM of a VM operation: its status, or failed with the operation's reason."""
    if op.state == "failed":
        return VmLine(vm.id, vm.name, "failed", vm.ipv4, vm.node, op.error_message)
    return VmLine(vm.id, vm.name, vm.status, vm.ipv4, vm.node)


async def _single_vm(session: AsyncSession, op: Operation) -> Vm | None:
    """The VM row of a VM operation (None for any other operation, or once deleted)."""
    if op.target_type != "vm" or op.target_id is None:
        return None
    return await VmRepository(session).get(op.target_id)


async def _target_label(session: AsyncSession, op: Operation) -> str:
    """`event lab1`, `vm lab1-001-...`, `cluster sync`: the target by name where it has one."""
    name = op.target_id or ""
    if op.target_type == "event" and op.target_id:
        event = await EventRepository(session).get(op.target_id)
        name = event.slug if event is not None else name
    elif op.target_type == "vm" and op.target_id:
        vm = await VmRepository(session).get(op.target_id)
        name = vm.name if vm is not None else name
    return f"{op.target_type} {name}".strip()


def _operation_view(op: Operation, target: str) -> OperationView:
    return OperationView(
        op.id,
        op.kind,
        target,
        op.state,
        op.progress_done,
        op.progress_total,
        op.error_message,
        op.started_at,
        op.finished_at,
    )


async def follow_operation(
    sessions: async_sessionmaker[AsyncSession],
    op_id: str,
    on_update: Callable[[Snapshot], None],
    *,
    poll: float = 0.5,
) -> Snapshot:
    """Call `on_update` with each look that differs from the last until the operation
    finishes; return the last look."""
    names: dict[str, str] = {}
    last: Snapshot | None = None
    while True:
        snap = await read_snapshot(sessions, op_id, names)
        if snap != last:
            on_update(snap)
            last = snap
        if snap.op.finished:
            return snap
        await asyncio.sleep(poll)
