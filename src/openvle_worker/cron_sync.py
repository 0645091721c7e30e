"""The periodic sync as an arq cron job: `sync_tick(ctx)` and its `sync_cron(settings)` spec.

Exactly once per tick across workers: arq's `unique` cron gives every worker the same
job id for a tick, and the kept result stops a late worker from running it again. Never
overlapping a slow previous run (or an on-demand sync): the reconciler's sync lock, in
Redis with a TTL (`ctx["redis"]` under arq), in-process for the embedded scheduler; a
tick that finds it held is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arq import cron
from arq.cron import CronJob

from openvle_core.reconcile import sync_cluster
from openvle_core.reconcile.lock import lock_ttl, sync_lock
from openvle_core.settings import Settings

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

SYNC_JOB_NAME = "sync_tick"
SKIPPED = {"ok": True, "not_run": "a previous sync is still running"}
DIVISORS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)


async def sync_tick(ctx: dict[str, Any]) -> dict[str, Any]:
    """Run one sync unless another one runs; returns the result's counts."""
    runtime: Runtime = ctx["runtime"]
    async with sync_lock(ctx.get("redis"), runtime.settings) as acquired:
        if not acquired:
            return dict(SKIPPED)
        result = await sync_cluster(
            sessions=runtime.sessions,
            proxmox=runtime.proxmox,
            snapshot=runtime.snapshot,
            settings=runtime.settings,
        )
        return result.as_dict()


def schedule(interval: int) -> dict[str, Any]:
    """arq cron fields for every `interval` seconds, rounded down to a divisor of the
    minute, hour or day so that every worker computes the same ticks."""
    if interval < 60:
        return {"second": set(range(0, 60, max(d for d in DIVISORS if d <= interval)))}
    if interval < 3600:
        step = max(d for d in DIVISORS if d <= interval // 60)
        return {"minute": set(range(0, 60, step)), "second": 0}
    step = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= min(interval // 3600, 12))
    return {"hour": set(range(0, 24, step)), "minute": 0, "second": 0}


def sync_cron(settings: Settings) -> CronJob:
    """The cron spec listed in `WorkerSettings.cron_jobs`."""
    interval = settings.worker.pve_periodic_interval
    return cron(
        sync_tick,
        name=SYNC_JOB_NAME,
        unique=True,
        run_at_startup=False,
        timeout=lock_ttl(settings),
        keep_result=max(interval, 60),
        max_tries=1,
        **schedule(interval),
    )
