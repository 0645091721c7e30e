"""The periodic sync as an arq cron job: the `sync_cron(settings)` spec over core's `sync_tick`.

Exactly once per tick across workers: arq's `unique` cron gives every worker the same
job id for a tick, and the kept result stops a late worker from running it again. Never
overlapping a slow previous run (or an on-demand sync): `openvle_core.sync.tick`
takes the sync lock (in Redis under arq, `ctx["redis"]`).
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob

from openvle_core.settings import Settings
from openvle_core.sync.lock import sync_timeout
from openvle_core.sync.tick import SKIPPED, sync_tick

__all__ = ["SKIPPED", "SYNC_JOB_NAME", "schedule", "sync_cron", "sync_tick"]

SYNC_JOB_NAME = "sync_tick"
DIVISORS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)


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
        timeout=sync_timeout(settings),
        keep_result=max(interval, 60),
        max_tries=1,
        **schedule(interval),
    )
