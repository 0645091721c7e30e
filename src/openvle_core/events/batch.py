"""Child operations of an event operation: one per VM, run here, bounded, resumable.

`run_children` gives each VM an operation row (`parent_id` = the event operation; kind
`event.vm_deploy` or `event.vm_archive`), runs it in this process through the runtime's
`runtime.run` (same claim, lease, retries and failure hooks as any operation) with at
most `WORKER_EVENT_PARALLEL_VMS` at once, and keeps the parent's progress (VMs done /
total) current. An unfinished child left by a crashed run is run again (or, if a live
runner elsewhere holds it, waited for) instead of getting a twin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import OperationState
from openvle_core.db.models import Operation
from openvle_core.db.session import reading, transaction
from openvle_core.operations.errors import TargetBusy
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

FINISHED = frozenset({OperationState.SUCCEEDED.value, OperationState.FAILED.value})
BUSY_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class ChildOutcome:
    """How one VM's child operation ended."""

    vm_id: str
    op_id: str | None
    succeeded: bool
    error: str | None = None


async def children_by_vm(
    sessions: async_sessionmaker[AsyncSession], parent_id: str
) -> dict[str, Operation]:
    """The newest child operation of the parent per VM."""
    async with reading(sessions) as session:
        rows = await OperationRepository(session).children(parent_id)
    return {op.target_id: op for op in rows if op.target_id is not None}


async def done_vms(sessions: async_sessionmaker[AsyncSession], parent_id: str) -> set[str]:
    """VMs whose child operation of this parent succeeded."""
    children = await children_by_vm(sessions, parent_id)
    return {vm for vm, op in children.items() if op.state == OperationState.SUCCEEDED.value}


async def _child_id(
    sessions: async_sessionmaker[AsyncSession],
    parent: Operation,
    kind: OperationKind,
    vm_id: str,
    params: dict[str, Any],
) -> str:
    """An unfinished child of this parent for the VM, or a new one (TargetBusy if the VM
    has another operation in flight)."""
    async with reading(sessions) as session:
        existing = await OperationRepository(session).newest_child(parent.id, vm_id)
    if existing is not None and existing.state not in FINISHED:
        return existing.id
    async with transaction(sessions) as session:
        op = await OperationRepository(session).create(
            kind, "vm", vm_id, params=params, parent_id=parent.id
        )
        return op.id


async def _wait_finished(runtime: Runtime, op_id: str) -> Operation:
    """The child's row once it finished (another runner may hold it for a while)."""
    while True:
        async with reading(runtime.sessions) as session:
            op = await OperationRepository(session).require(op_id)
        if op.state in FINISHED:
            return op
        await runtime.run(op_id)  # takes it over once its runner's lease expired
        await asyncio.sleep(BUSY_POLL_S)


async def run_child(
    runtime: Runtime, parent: Operation, kind: OperationKind, vm_id: str, params: dict[str, Any]
) -> ChildOutcome:
    """Run one VM's child operation to its end and say how it went."""
    try:
        op_id = await _child_id(runtime.sessions, parent, kind, vm_id, params)
    except TargetBusy as exc:
        return ChildOutcome(vm_id, None, False, f"TargetBusy: {exc}")
    await runtime.run(op_id)
    op = await _wait_finished(runtime, op_id)
    if op.state == OperationState.SUCCEEDED.value:
        return ChildOutcome(vm_id, op.id, True)
    return ChildOutcome(vm_id, op.id, False, f"{op.error_type}: {op.error_message}")


async def set_progress(
    sessions: async_sessionmaker[AsyncSession], parent_id: str, done: int, total: int
) -> None:
    """Record the parent's progress (VMs done / total)."""
    async with transaction(sessions) as session:
        await OperationRepository(session).set_progress(parent_id, done, total)


async def run_children(
    runtime: Runtime,
    parent: Operation,
    kind: OperationKind,
    vm_ids: Sequence[str],
    params: dict[str, Any],
    *,
    already_done: int = 0,
    total: int,
) -> list[ChildOutcome]:
    """Run a child per VM, `WORKER_EVENT_PARALLEL_VMS` at once; progress after each."""
    gate = asyncio.Semaphore(runtime.settings.worker.event_parallel_vms)
    done = already_done
    outcomes: list[ChildOutcome] = []

    async def one(vm_id: str) -> None:
        nonlocal done
        async with gate:
            outcome = await run_child(runtime, parent, kind, vm_id, params)
        outcomes.append(outcome)
        if outcome.succeeded:
            done += 1
            await set_progress(runtime.sessions, parent.id, done, total)

    await asyncio.gather(*(one(vm_id) for vm_id in vm_ids))
    return outcomes
