"""The in-process scheduler of the embedded default: the worker's cron jobs without arq.

Runs the same functions the arq worker lists in `cron_jobs` (the periodic sync, the
recovery scan), each every `interval` seconds, with `ctx = {"runtime": runtime}`. A job
that raises is counted in `openvle_scheduler_failures` and logged; the loop goes on, as
arq's cron would at the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from openvle_core.db.session import note_unavailable
from openvle_core.events.schedule import EVENTS_INTERVAL_S, events_tick
from openvle_core.metrics import REGISTRY
from openvle_core.operations.lease import recover
from openvle_core.runtime import Runtime
from openvle_core.sync.tick import sync_tick

log = logging.getLogger(__name__)
SCHEDULER_FAILURES = Counter(
    "openvle_scheduler_failures",
    "Periodic jobs of the in-process scheduler that raised, by job.",
    ["job"],
    registry=REGISTRY,
)
JobFunc = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class PeriodicJob:
    """A function of `ctx` to call every `interval` seconds."""

    name: str
    interval: float
    func: JobFunc


async def recover_tick(ctx: dict[str, Any]) -> int:
    """Re-enqueue operations whose runner died (shared with the arq worker's cron); while
    the database is unavailable, nothing (the outage is logged once, not per tick)."""
    runtime: Runtime = ctx["runtime"]
    try:
        return await recover(runtime)
    except SQLAlchemyError as exc:
        if not note_unavailable(exc):
            raise
        return 0


def default_jobs(runtime: Runtime) -> list[PeriodicJob]:
    """Recovery every lease, the periodic sync, and the
    event lifecycle (deploy at the start, archive after the end) every minute."""
    jobs = [PeriodicJob("recover", runtime.lease_seconds, recover_tick)]
    interval = float(runtime.settings.worker.pve_periodic_interval)
    jobs.append(PeriodicJob("sync", interval, sync_tick))
    jobs.append(PeriodicJob("events", EVENTS_INTERVAL_S, events_tick))
    return jobs


async def _every(job: PeriodicJob, ctx: dict[str, Any]) -> None:
    while True:
        await asyncio.sleep(job.interval)
        try:
            await job.func(ctx)
        except Exception:
            SCHEDULER_FAILURES.labels(job.name).inc()
            log.exception("periodic job %s failed", job.name)


@contextlib.asynccontextmanager
async def scheduler(
    runtime: Runtime, jobs: list[PeriodicJob] | None = None
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run the periodic jobs while the block runs; cancel them on exit."""
    ctx: dict[str, Any] = {"runtime": runtime}
    tasks = [
        asyncio.create_task(_every(job, ctx), name=f"openvle-cron-{job.name}")
        for job in (jobs if jobs is not None else default_jobs(runtime))
    ]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
