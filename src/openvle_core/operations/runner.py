"""Run an operation: claim it, call its kind's handler, retry transient failures, finish.

`OperationRunner(kinds)` is built once per process from the registry of handlers
(`openvle_core.handlers`) and handed to `open_runtime`; `await runner(runtime, op_id)` is
the one call both transports (arq, in-process) make. It is safe to call twice for one id:
a finished operation is left alone and a running one with a live heartbeat is skipped
(see `lease`). Handlers check Proxmox before each step, so a run after a crash continues
where the last one stopped. Each run logs one line when it starts and one when it ends
(state and duration) at INFO: the progress log of a process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import OperationState
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.errors import OpenVLEError
from openvle_core.logging import bind, log_context
from openvle_core.metrics import OPERATION_RETRIES, OPERATION_SECONDS, OPERATIONS
from openvle_core.operations import lease
from openvle_core.operations.errors import LeaseLost
from openvle_core.operations.kinds import Kinds, KindSpec
from openvle_core.operations.repository import OperationRepository
from openvle_core.operations.retry import backoff, is_transient

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

log = logging.getLogger(__name__)


class OperationRunner:
    """Runs operation rows with the handlers of `kinds` (see the module docstring)."""

    def __init__(self, kinds: Kinds) -> None:
        self.kinds = kinds

    async def __call__(self, runtime: Runtime, op_id: str) -> Operation | None:
        """Do the work of one operation row; returns it as this run finished it (None when
        this run did not: taken by another runner, finished already, or handed back)."""
        with log_context(operation_id=op_id):  # every log line of the run carries the id
            try:
                return await self._run(runtime, op_id)
            except Exception as exc:  # escaped the handler's own failure path: record it
                await _record_crash(runtime.sessions, op_id, exc)
                raise

    def spec(self, kind: str) -> KindSpec | None:
        """The handler of `kind`, or None for a kind nobody handles."""
        return self.kinds.get(kind)

    async def _run(self, runtime: Runtime, op_id: str) -> Operation | None:
        outcome, op = await lease.claim(runtime, op_id)
        if outcome is not lease.Claim.TAKEN or op is None:
            log.debug("operation %s not run: %s", op_id, outcome.value)
            return None
        bind(kind=op.kind)
        log.info("%s %s started", op.kind, _target(op))
        spec = self.spec(op.kind)
        try:
            async with lease.heartbeat(runtime, op):
                if spec is None:
                    follower = await _finish(
                        runtime.sessions,
                        op,
                        OperationState.FAILED,
                        "UnknownKind",
                        f"no kind {op.kind}",
                    )
                else:
                    follower = await _run_with_retries(runtime, op, spec)
        except LeaseLost as exc:  # recovery may run it elsewhere: leave the row alone
            log.error("operation %s (%s) stopped: %s", op.id, op.kind, exc)
            return None
        except asyncio.CancelledError:  # stopped (a worker shutting down): hand it back
            await lease.hand_back(runtime, op)
            raise
        if follower is not None:
            await runtime.queue.enqueue(follower)
        return op


async def _record_crash(
    sessions: async_sessionmaker[AsyncSession], op_id: str, exc: Exception
) -> None:
    """Mark the row failed with the error's type and message if it is still running."""
    try:
        async with transaction(sessions) as session:
            repo = OperationRepository(session)
            row = await repo.get(op_id)
            if row is None or row.state != OperationState.RUNNING.value:
                return
            message = f"crashed outside the handler: {exc}" if str(exc) else "crashed"
            await repo.finish(
                row,
                OperationState.FAILED,
                error_type=type(exc).__name__,
                error_message=message[:2000],
            )
        OPERATIONS.labels(row.kind, OperationState.FAILED.value).inc()
    except Exception:  # the DB itself may be what failed; recovery retries the row later
        log.exception("could not mark crashed operation %s failed", op_id)


async def _run_with_retries(runtime: Runtime, op: Operation, spec: KindSpec) -> str | None:
    """Call the handler until it succeeds, fails permanently, or retries run out; returns
    `_finish`'s follower."""
    retry = max(op.attempts - 1, 0)
    max_retry = runtime.settings.worker.max_retry
    while True:
        try:
            await spec.handler(runtime, op)
        except Exception as exc:
            if is_transient(exc) and retry < max_retry:
                await _note_retry(runtime.sessions, op, exc, retry)
                await asyncio.sleep(backoff(op.kind, retry, _scale(runtime)))
                retry += 1
                continue
            return await _fail(runtime, op, spec, exc, gave_up=is_transient(exc))
        return await _finish(runtime.sessions, op, OperationState.SUCCEEDED)


def _scale(runtime: Runtime) -> float:
    return runtime.settings.worker.retry_backoff_scale


async def _note_retry(
    sessions: async_sessionmaker[AsyncSession], op: Operation, exc: Exception, retry: int
) -> None:
    """Count the retry and show the last transient error on the row while it waits."""
    OPERATION_RETRIES.labels(op.kind, type(exc).__name__).inc()
    log.info(
        "operation %s (%s) retry %d after %s: %s",
        op.id,
        op.kind,
        retry + 1,
        type(exc).__name__,
        exc,
    )
    async with transaction(sessions) as session:
        row = await OperationRepository(session).require(op.id)
        row.attempts += 1
        row.error_type, row.error_message = type(exc).__name__, f"retrying: {exc}"
        op.attempts = row.attempts


async def _fail(
    runtime: Runtime, op: Operation, spec: KindSpec, exc: Exception, *, gave_up: bool
) -> str | None:
    """Record a permanent failure (or retries exhausted) and let the kind tidy its target."""
    if not isinstance(exc, OpenVLEError):
        log.exception("operation %s (%s) crashed", op.id, op.kind, exc_info=exc)
    message = str(exc) or type(exc).__name__
    if gave_up:
        message = f"gave up after {op.attempts} attempts: {message}"
    if spec.on_failure is not None:
        try:
            await spec.on_failure(runtime, op, exc)
        except Exception as hook_exc:  # the failure itself is what the row must show
            message += f" (and tidying up failed: {type(hook_exc).__name__}: {hook_exc})"
    return await _finish(runtime.sessions, op, OperationState.FAILED, type(exc).__name__, message)


async def _finish(
    sessions: async_sessionmaker[AsyncSession],
    op: Operation,
    state: OperationState,
    error_type: str | None = None,
    message: str | None = None,
) -> str | None:
    """End the row, release its target and record the metrics; `op` shows the end.
    Returns the oldest operation queued behind it for the same target, if any (read in
    the same commit, to be enqueued now that the target is free)."""
    async with transaction(sessions) as session:
        repo = OperationRepository(session)
        row = await repo.require(op.id)
        result: dict[str, Any] = {**(row.result or {}), **(op.result or {})}
        await repo.finish(row, state, error_type=error_type, error_message=message, result=result)
        if state is OperationState.SUCCEEDED:
            row.progress_done = max(row.progress_total, 1)
            row.progress_total = max(row.progress_total, 1)
        follower = await repo.next_waiting(row)
    for name in _SHOWN:  # committed: the caller's row shows the end
        setattr(op, name, getattr(row, name))
    OPERATIONS.labels(op.kind, state.value).inc()
    seconds = max((utcnow() - (op.started_at or utcnow())).total_seconds(), 0.0)
    OPERATION_SECONDS.labels(op.kind).observe(seconds)
    outcome = f": {message}" if message else ""
    log.info("%s %s %s in %.1f s%s", op.kind, _target(op), state.value, seconds, outcome)
    return follower


# what `_finish` copies from the finished row onto the caller's `op`
_SHOWN = (
    "state",
    "error_type",
    "error_message",
    "result",
    "lock_key",
    "finished_at",
    "progress_done",
    "progress_total",
)


def _target(op: Operation) -> str:
    """`event 0193...`, `vm 0193...`, `cluster`: what an operation works on."""
    if op.target_id in (None, "", op.kind):  # a sync's target is ("cluster", "sync")
        return op.target_type
    return f"{op.target_type} {op.target_id}"
