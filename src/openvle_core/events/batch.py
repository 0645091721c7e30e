"""Child operations of an event operation: one per VM, bounded, spread, resumable.

`run_children` gives each VM an operation row (`parent_id` = the event operation; kind
`event.vm_deploy` or `event.vm_archive`) with at most `WORKER_EVENT_PARALLEL_VMS`
unfinished at once, and keeps the parent's progress (VMs done / total) current. Every
child runs through `runtime.run` (same claim, lease, retries and failure hooks as any
operation), wherever it runs:

- one process (the in-process queue, the embedded mode): in this process, directly;
- a queue shared by several workers (arq): the child is enqueued, so any worker with a
  free slot takes it (`fan_out`), and the parent watches the rows of its children in
  flight (one query per `BUSY_POLL_S` for all of them). A child no worker took within
  `PICKUP_S` (every slot busy, e.g. with other events' parents) or whose runner's lease
  ran out is run here, in the parent's job; while one of its children waits untaken
  (the workers are saturated), the parent runs its next children here at once instead
  of offering them. A parent never waits for a slot that another parent holds, so
  parents filling every slot cannot deadlock, and the claim (row lock, lease) decides
  who runs a child that a worker takes at the same moment.

An unfinished child left by a crashed run is run again (or, if a live runner elsewhere
holds it, waited for) instead of getting a twin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import OperationState
from openvle_core.db.models import Operation
from openvle_core.db.session import reading, transaction
from openvle_core.db.types import utcnow
from openvle_core.operations.errors import TargetBusy
from openvle_core.operations.kinds import Handler, OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.queue import QueueUnavailable

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

log = logging.getLogger(__name__)

FINISHED = frozenset({OperationState.SUCCEEDED.value, OperationState.FAILED.value})
BUSY_POLL_S = 0.5
PICKUP_S = 1.5
PROGRESS_EVERY_S = 0.25  # at most one write of the parent's progress per this while VMs end
"""Seconds an enqueued child may stay untaken before its parent runs it (arq workers
poll Redis every 0.5 s: a worker with a free slot takes a job well within this)."""


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
    async with transaction(sessions) as session:  # one unit of work: look, then make
        repo = OperationRepository(session)
        existing = await repo.newest_child(parent.id, vm_id)
        if existing is not None and existing.state not in FINISHED:
            return existing.id
        op = await repo.create(kind, "vm", vm_id, params=params, parent_id=parent.id)
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


async def _run_here(runtime: Runtime, op_id: str) -> Operation:
    """Run the child in this process; its row once finished (as the run ended it, or
    read once whoever runs it finished it)."""
    ran = await runtime.run(op_id)
    if ran is not None and ran.state in FINISHED:
        return ran
    return await _wait_finished(runtime, op_id)


class Board:
    """The rows of the children in flight, read for all of them once per `BUSY_POLL_S`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.watched: set[str] = set()
        self.rows: dict[str, Operation] = {}
        self.offered: dict[str, float] = {}  # monotonic time each child was enqueued
        self._tick = asyncio.Condition()

    @contextlib.contextmanager
    def watch(self, op_id: str) -> Iterator[None]:
        """Include the child in every read while the block runs."""
        self.watched.add(op_id)
        self.offered[op_id] = time.monotonic()
        try:
            yield
        finally:
            self.watched.discard(op_id)
            self.rows.pop(op_id, None)
            self.offered.pop(op_id, None)

    def untaken(self, op_id: str) -> bool:
        """The child waited `PICKUP_S` in the queue and no worker took it."""
        row = self.rows.get(op_id)
        waited = time.monotonic() - self.offered.get(op_id, time.monotonic())
        return row is not None and row.state == OperationState.QUEUED.value and waited >= PICKUP_S

    def saturated(self) -> bool:
        """A child of this parent waits untaken: every worker's slots are busy."""
        return any(self.untaken(op_id) for op_id in self.watched)

    async def next(self, op_id: str) -> Operation:
        """The child's row as the next read found it (watched)."""
        while True:
            async with self._tick:
                await self._tick.wait()
            row = self.rows.get(op_id)
            if row is not None:
                return row

    async def read(self) -> None:
        """Read the watched rows now and wake every waiter."""
        ids = sorted(self.watched)
        async with reading(self.runtime.sessions) as session:
            rows = await OperationRepository(session).many(ids)
        self.rows.update({op.id: op for op in rows if op.id in self.watched})
        async with self._tick:
            self._tick.notify_all()

    @contextlib.asynccontextmanager
    async def polling(self) -> AsyncIterator[Board]:
        """Read every `BUSY_POLL_S` while the block runs (a failed read: the next one)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(BUSY_POLL_S)
                if not self.watched:
                    continue
                try:
                    await self.read()
                except Exception as exc:  # a DB blip; the parent's lease covers a long one
                    log.warning("children's rows not read: %s: %s", type(exc).__name__, exc)

        task = asyncio.create_task(loop(), name="openvle-children-board")
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.wait([task])


def _stale(runtime: Runtime, op: Operation) -> bool:
    """A running child whose runner missed its lease (died): any runner may take it."""
    stale = utcnow() - timedelta(seconds=runtime.lease_seconds)
    return op.state == OperationState.RUNNING.value and op.updated_at <= stale


async def _row(runtime: Runtime, op_id: str) -> Operation:
    async with reading(runtime.sessions) as session:
        return await OperationRepository(session).require(op_id)


async def spread(runtime: Runtime, board: Board, op_id: str) -> Operation:
    """Offer the child to every worker (enqueue) and wait for its end; run it here if no
    worker took it within `PICKUP_S` or its runner died (see the module docstring)."""
    if board.saturated():  # no free slot anywhere: do not queue behind the others
        return await _run_here(runtime, op_id)
    try:
        await runtime.queue.enqueue(op_id)
    except QueueUnavailable as exc:  # Redis away: this process runs it
        log.warning("child %s runs in its parent's job: %s", op_id, exc)
        return await _run_here(runtime, op_id)
    with board.watch(op_id):
        while True:
            op = await board.next(op_id)
            if op.state in FINISHED:
                return op
            if board.untaken(op_id) or _stale(runtime, op):
                await runtime.run(op_id)  # the claim decides: a live runner elsewhere keeps it
                op = await _row(runtime, op_id)
                if op.state in FINISHED:
                    return op
                board.offered[op_id] = time.monotonic()


async def run_child(
    runtime: Runtime,
    parent: Operation,
    kind: OperationKind,
    vm_id: str,
    params: dict[str, Any],
    board: Board | None = None,
) -> ChildOutcome:
    """Run one VM's child operation to its end (here, or spread over the workers through
    `board`) and say how it went."""
    try:
        op_id = await _child_id(runtime.sessions, parent, kind, vm_id, params)
    except TargetBusy as exc:
        return ChildOutcome(vm_id, None, False, f"TargetBusy: {exc}")
    if board is not None:
        op = await spread(runtime, board, op_id)
    else:
        op = await _run_here(runtime, op_id)
    if op.state == OperationState.SUCCEEDED.value:
        return ChildOutcome(vm_id, op.id, True)
    return ChildOutcome(vm_id, op.id, False, f"{op.error_type}: {op.error_message}")


def in_event_limits(handler: Handler) -> Handler:
    """A child's handler that, run by a worker of a shared queue outside its parent's
    process, works inside that worker's event limits (`caps.active()`: its placement lock
    and the cached reads of templates and cluster figures, as in the parent)."""

    async def run(runtime: Runtime, op: Operation) -> None:
        if not runtime.queue.shared or runtime.caps.current is not None:
            await handler(runtime, op)
            return
        async with runtime.caps.active():
            await handler(runtime, op)

    run.__doc__ = handler.__doc__
    return run


async def set_progress(
    sessions: async_sessionmaker[AsyncSession], parent_id: str, done: int, total: int
) -> None:
    """Record the parent's progress (VMs done / total)."""
    async with transaction(sessions) as session:
        await OperationRepository(session).set_progress(parent_id, done, total)


class Progress:
    """The parent's progress as its children succeed: written `PROGRESS_EVERY_S` after the
    first success since the last write (one write for the VMs that end meanwhile, not one
    each), and at the end (`close`). Writes go one at a time, in order; a write that fails
    is logged, and the next one catches up."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], parent_id: str, done: int, total: int
    ) -> None:
        self.sessions, self.parent_id, self.total = sessions, parent_id, total
        self.done = self.written = done
        self._soon: asyncio.Task[None] | None = None  # a write not begun yet
        self._writing = asyncio.Lock()

    def add(self) -> None:
        """One more child succeeded."""
        self.done += 1
        if self._soon is None:
            self._soon = asyncio.create_task(self._write_soon(), name="openvle-progress")

    async def _write_soon(self) -> None:
        await asyncio.sleep(PROGRESS_EVERY_S)
        self._soon = None  # begun: successes from here on schedule the next write
        await self._write()

    async def _write(self) -> None:
        async with self._writing:
            done = self.done
            if done == self.written:
                return
            try:
                await set_progress(self.sessions, self.parent_id, done, self.total)
            except Exception as exc:  # a DB blip: the next write (or `close`) catches up
                log.warning("progress not written: %s: %s", type(exc).__name__, exc)
                return
            self.written = done

    async def close(self) -> None:
        """Write what is not written yet (instead of a write not begun)."""
        await self.drop()
        await self._write()

    async def drop(self) -> None:
        """Cancel a write not begun yet; wait for one under way."""
        soon, self._soon = self._soon, None
        if soon is not None:
            soon.cancel()
            await asyncio.wait([soon])
        async with self._writing:
            pass


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
    """Run a child per VM, `WORKER_EVENT_PARALLEL_VMS` at once (spread over the workers
    when the queue is shared); the progress as they succeed (`Progress`)."""
    gate = asyncio.Semaphore(runtime.settings.worker.event_parallel_vms)
    progress = Progress(runtime.sessions, parent.id, already_done, total)
    outcomes: list[ChildOutcome] = []

    async def one(vm_id: str, board: Board | None) -> None:
        async with gate:
            outcome = await run_child(runtime, parent, kind, vm_id, params, board)
        outcomes.append(outcome)
        if outcome.succeeded:
            progress.add()

    try:
        if not runtime.queue.shared:
            await asyncio.gather(*(one(vm_id, None) for vm_id in vm_ids))
        else:
            async with Board(runtime).polling() as board:
                await asyncio.gather(*(one(vm_id, board) for vm_id in vm_ids))
    except BaseException:  # stopped or failed: the next run counts from the children's rows
        await asyncio.shield(progress.drop())
        raise
    await progress.close()
    return outcomes
