"""What `openvle follow` shows of an operation: its state, and each of its VMs as it goes.

An event's deploy or archive runs one child operation per VM; a VM's line combines that
child's state with the VM row (cloning, stopped, starting, running with its address,
stopping, deleting, gone), so the display moves with every step and not only when a VM
is done. A VM operation (a stop, a clone) is shown the same way as its one VM. Everything
is read from the database the service writes, one short session per look.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import Operation, Vm
from openvle_core.db.types import utcnow
from openvle_core.events.repository import EventRepository
from openvle_core.operations import journal
from openvle_core.operations.repository import OperationRepository
from openvle_core.vms.repository import VmRepository

FINISHED = frozenset({"succeeded", "failed"})
MAKING = frozenset({"event.vm_deploy", "vm.clone"})  # kinds that clone, then start, a VM


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
    """One VM as shown: `step` is waiting, a VM status (cloning, stopped, starting,
    running ...; `cloned` while a new VM waits for its start), deleted, or failed."""

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
        repo = OperationRepository(session)
        op = await repo.require(op_id)
        children = newest_per_target(await repo.children(op_id))
        if op.target_type == "vm" and op.target_id is not None:
            children.setdefault(op.target_id, op)  # a VM operation is its VM's own step
        vms = await _vms_of(session, op)
        label = await _target_label(session, op)
    names.update({vm.id: vm.name for vm in vms.values()})
    for vm_id, child in children.items():  # a VM deleted before we first looked
        deleted = journal.read(child).deleted_name
        if deleted:
            names.setdefault(vm_id, deleted)
    ids = sorted(set(vms) | set(children), key=lambda i: (names.get(i, i), i))
    lines = tuple(vm_line(i, vms.get(i), children.get(i), names) for i in ids)
    return Snapshot(_operation_view(op, label), lines)


def newest_per_target(children: Sequence[Operation]) -> dict[str, Operation]:
    """The newest child per VM (ids sort by time: a later round's child wins)."""
    return {op.target_id: op for op in children if op.target_id is not None}


def vm_line(
    vm_id: str, vm: Vm | None, step_op: Operation | None, names: Mapping[str, str]
) -> VmLine:
    """How one VM stands: its operation's state first, then the VM row's status."""
    name = names.get(vm_id, vm_id)
    if step_op is not None and step_op.state == "failed":
        return VmLine(vm_id, name, "failed", error=step_op.error_message)
    if vm is None:
        return VmLine(vm_id, name, "deleted")
    if step_op is None or step_op.state == "queued":
        return VmLine(vm_id, name, "waiting", node=vm.node)
    step = vm.status
    if step == "stopped" and step_op.kind in MAKING and step_op.state == "running":
        step = "cloned"  # a new VM between its clone and its start, not one someone stopped
    return VmLine(vm_id, name, step, vm.ipv4, vm.node)


async def _vms_of(session: AsyncSession, op: Operation) -> dict[str, Vm]:
    """The VM rows the operation works on: an event's VMs, or the one VM."""
    if op.target_id is None:
        return {}
    if op.target_type == "event":
        return {vm.id: vm for vm in await VmRepository(session).for_event(op.target_id)}
    if op.target_type == "vm":
        vm = await VmRepository(session).get(op.target_id)
        return {vm.id: vm} if vm is not None else {}
    return {}


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
