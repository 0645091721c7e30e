"""The arq worker: `run_operation_job(op_id)`, the recovery and sync crons, and
`run_worker(settings)` (arq with `REDIS_URL`, else the embedded in-process loop).

Resources are opened in `on_startup` (one Runtime in `ctx["runtime"]`, the metrics and
health port of `probe`) and closed in `on_shutdown`. Shortly after start-up the worker
re-enqueues operations whose runner died (a crash, a SIGKILL); the `recover` cron keeps
doing so every 10 s. On SIGTERM (or SIGINT) it takes no new job, lets its running ones
finish for WORKER_STOP_TIMEOUT seconds, then stops the rest: each hands its operation
back (`lease.hand_back`) and arq leaves its job queued, so another worker resumes it at
once. Then it exits 0. Without `REDIS_URL` (`run_embedded`) the same: the scheduler stops,
what runs or is queued in the process gets WORKER_STOP_TIMEOUT, the rest is handed back
to the next start, exit 0 (it used to die by the signal, and its operations waited for
their leases to expire).

Once its runtime is open the worker moves every object it holds so far (modules,
classes, settings, the runtime) out of the garbage collector's sight (`settle_heap`):
a full collection then walks the objects of the work at hand only. At 10,000 VMs the
collector took 0.1-0.6 s of each periodic sync walking ~100,000 start-up objects
(`benchmarks/sync.py --phases`), 0.03 s after.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Iterator
from typing import Any

from arq import cron, func
from arq.connections import ArqRedis, create_pool
from arq.cron import CronJob
from arq.worker import Function

from openvle_core.events.schedule import EVENTS_JOB_NAME, events_tick
from openvle_core.handlers import run_operation
from openvle_core.metrics import WORKER_JOB_CRASHES
from openvle_core.operations.lease import recover
from openvle_core.queue.arq import JOB_FUNCTION
from openvle_core.queue.inprocess import InProcessQueue
from openvle_core.redisconn import arq_settings as arq_redis
from openvle_core.runtime import DEFAULT_LEASE_SECONDS, open_runtime
from openvle_core.scheduler import recover_tick, scheduler
from openvle_core.settings import ConfigError, Settings, load_settings
from openvle_worker.probe import serve_probes
from openvle_worker.resilience import ResilientWorker, connect

log = logging.getLogger(__name__)
JOB_TIMEOUT_S = 4 * 3600


async def run_operation_job(ctx: dict[str, Any], op_id: str) -> None:
    """arq job: run one operation (a thin wrapper; the row records the outcome)."""
    try:
        await ctx["runtime"].run(op_id)
    except Exception:  # run_operation marked the row failed; arq records the job's failure
        WORKER_JOB_CRASHES.labels("arq").inc()
        raise


def settle_heap() -> None:
    """Collect what start-up left, then freeze the rest (`gc.freeze`): those objects live
    as long as the process, and the collector no longer walks them on every full
    collection. Objects made later are collected as usual. Once per process: a second
    runtime (tests) would freeze what earlier ones left."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


async def startup(ctx: dict[str, Any]) -> None:
    """Open the Runtime; schedule a first recovery once a dead runner's lease expired."""
    settings: Settings = ctx.get("settings") or load_settings()
    lease = float(ctx.get("lease_seconds", DEFAULT_LEASE_SECONDS))
    stack = contextlib.AsyncExitStack()
    ctx["runtime"] = await stack.enter_async_context(
        open_runtime(settings, runner=run_operation, in_process=False, lease_seconds=lease)
    )
    ctx["_stack"] = stack
    await stack.enter_async_context(serve_probes(ctx["runtime"]))
    settle_heap()
    ctx["_first_recovery"] = asyncio.create_task(_recover_after(ctx, lease))


async def _recover_after(ctx: dict[str, Any], delay: float) -> None:
    await asyncio.sleep(delay)
    count = await recover(ctx["runtime"])
    log.info("start-up recovery re-enqueued %d operations", count)


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close the Runtime."""
    task = ctx.pop("_first_recovery", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stack: contextlib.AsyncExitStack | None = ctx.pop("_stack", None)
    if stack is not None:
        await stack.aclose()


def cron_jobs(settings: Settings) -> list[CronJob]:
    """Recovery every 10 s, the periodic sync and the event lifecycle (each exactly once
    per tick across workers)."""
    from openvle_worker.cron_sync import sync_cron

    recovery = cron(
        recover_tick,
        name="recover",
        second=set(range(0, 60, 10)),
        unique=True,
        run_at_startup=False,
        max_tries=1,
    )
    events = cron(
        events_tick, name=EVENTS_JOB_NAME, second=0, unique=True, run_at_startup=False, max_tries=1
    )
    return [recovery, sync_cron(settings), events]


FUNCTIONS: list[Function] = [
    func(run_operation_job, name=JOB_FUNCTION, timeout=JOB_TIMEOUT_S, max_tries=3)
]


def arq_settings(settings: Settings, **ctx: Any) -> dict[str, Any]:
    """arq `Worker` keyword arguments for `settings`: queue, crons, WORKER_MAX_JOBS."""
    if settings.redis.url is None:
        raise ConfigError([("REDIS_URL", "the arq worker needs Redis (or use `openvle worker`)")])
    return {
        "functions": FUNCTIONS,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_timeout": JOB_TIMEOUT_S,
        "redis_settings": arq_redis(settings.redis),
        "cron_jobs": cron_jobs(settings),
        "max_jobs": settings.worker.max_jobs,
        "job_completion_wait": settings.worker.stop_timeout,  # after SIGTERM, then cancel
        "ctx": {"settings": settings, **ctx},
    }


class _ArqCliSettings(dict[str, Any]):
    """What `arq openvle_worker.worker.WorkerSettings` reads. arq calls `items()` when it
    builds the worker: only then are the environment's settings loaded (not at import)."""

    functions = FUNCTIONS

    def items(self) -> Any:
        """The worker's arguments from the environment's settings (ConfigError if invalid)."""
        return arq_settings(load_settings()).items()


WorkerSettings = _ArqCliSettings()


async def run_worker(settings: Settings, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
    """Run until cancelled: an arq worker with `REDIS_URL` (riding out Redis outages,
    see `resilience`), else the embedded loop."""
    if settings.redis.url is None:
        await run_embedded(settings, lease_seconds=lease_seconds)
        return
    options = arq_settings(settings, lease_seconds=lease_seconds)
    pool = await connect(options["redis_settings"])  # waits for Redis, if it is away
    worker = ResilientWorker(**options, redis_pool=pool)  # rides out Redis outages
    try:  # SIGINT/SIGTERM cancel the jobs (recovery resumes them) and end the worker
        with contextlib.suppress(asyncio.CancelledError):
            await worker.async_run()
    finally:
        with contextlib.suppress(asyncio.CancelledError):  # close() gathers cancelled jobs
            await worker.close()


class WorkerPool(ArqRedis):
    """arq's pool, closed with redis-py's `aclose`: arq's `Worker.close` still calls the
    deprecated `close`, which warns on every worker stop."""

    async def close(self, close_connection_pool: bool | None = None) -> None:
        """What arq's `Worker.close` calls: `aclose`, without the deprecation warning."""
        await self.aclose(close_connection_pool)


async def worker_pool(redis: Any) -> ArqRedis:
    """arq's own pool for `redis` (`RedisSettings`), as a `WorkerPool` (handed to
    `create_worker(..., redis_pool=)`)."""
    pool = await create_pool(redis)
    pool.__class__ = WorkerPool  # same object and connections; only `close` differs
    return pool


async def run_embedded(settings: Settings, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
    """In-process queue plus the scheduler; recovers unfinished operations first. On
    SIGTERM or SIGINT (even one that comes during start-up) the scheduler stops, running
    and already queued operations get WORKER_STOP_TIMEOUT seconds to finish, then the rest
    are stopped and hand their operations back (`lease.hand_back`: the next start resumes
    them at once); exit 0, as the arq worker does."""
    with stop_signals() as stopped:
        opened = open_runtime(
            settings, runner=run_operation, in_process=True, lease_seconds=lease_seconds
        )
        async with opened as runtime, serve_probes(runtime):
            async with scheduler(runtime):
                settle_heap()
                await recover(runtime)
                signal_name = await stopped
            timeout = settings.worker.stop_timeout
            log.info("worker stopping on %s: operations get %.0f s to finish", signal_name, timeout)
            queue = runtime.queue
            assert isinstance(queue, InProcessQueue)  # in_process=True
            with contextlib.suppress(TimeoutError):  # then closing the queue stops the rest
                await asyncio.wait_for(queue.join(), timeout)


@contextlib.contextmanager
def stop_signals() -> Iterator[asyncio.Future[str]]:
    """While the block runs, SIGTERM and SIGINT set the future yielded (to the name of
    the first that came) instead of ending the process."""
    loop = asyncio.get_running_loop()
    came: asyncio.Future[str] = loop.create_future()
    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, _settle, came, signum.name)
    try:
        yield came
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def _settle(came: asyncio.Future[str], name: str) -> None:
    if not came.done():
        came.set_result(name)
