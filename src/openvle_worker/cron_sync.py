"""The periodic sync as an arq cron job: `sync_tick(ctx)` and its `sync_cron(settings)` spec.

Exactly once per tick across workers: arq's `unique` cron gives every worker the same
job id for a tick, and the kept result stops a late worker from running it again. Never
overlapping a slow previous run: a Redis lock with a TTL (an in-process lock when the
embedded scheduler calls without Redis); a tick that finds it held is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from arq import cron
from arq.cron import CronJob

from openvle_core.reconcile import sync_cluster
from openvle_core.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from openvle_core.runtime import Runtime

SYNC_JOB_NAME = "sync_tick"
MIN_LOCK_TTL_S = 300
SKIPPED = {"ok": True, "not_run": "a previous sync is still running"}
# Delete the lock only if it still holds our token (it may have expired and been retaken).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
_local_lock = asyncio.Lock()


async def sync_tick(ctx: dict[str, Any]) -> dict[str, Any]:
    """Run one sync unless the previous one still runs; returns the result's counts."""
    runtime: Runtime = ctx["runtime"]
    async with exclusive(ctx.get("redis"), runtime.settings) as acquired:
        if not acquired:
            return dict(SKIPPED)
        result = await sync_cluster(
            sessions=runtime.sessions,
            proxmox=runtime.proxmox,
            snapshot=runtime.snapshot,
            settings=runtime.settings,
        )
        return result.as_dict()


def lock_ttl(settings: Settings) -> int:
    """How long a sync may hold the lock before another may start (crash safety)."""
    return max(MIN_LOCK_TTL_S, 5 * settings.worker.pve_periodic_interval)


def lock_key(settings: Settings) -> str:
    """One lock per pool: two OpenVLE instances with their own pools sync independently."""
    return f"openvle:sync-lock:{settings.proxmox.vms_pool}"


@contextlib.asynccontextmanager
async def exclusive(redis: Redis | None, settings: Settings) -> AsyncIterator[bool]:
    """Yield True while holding the sync lock, False (without waiting) if someone holds it."""
    if redis is None:
        if _local_lock.locked():
            yield False
            return
        async with _local_lock:
            yield True
        return
    key, token = lock_key(settings), secrets.token_hex(16)
    if not await redis.set(key, token, nx=True, ex=lock_ttl(settings)):
        yield False
        return
    try:
        yield True
    finally:
        await redis.eval(_RELEASE, 1, key, token)  # type: ignore[misc]  # redis-py: Awaitable | Any


def schedule(interval: int) -> dict[str, Any]:
    """arq cron fields for every `interval` seconds, rounded down to a divisor of the
    minute, hour or day so that every worker computes the same ticks."""
    if interval < 60:
        step = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= interval)
        return {"second": set(range(0, 60, step))}
    if interval < 3600:
        step = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= interval // 60)
        return {"minute": set(range(0, 60, step)), "second": 0}
    step = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= min(interval // 3600, 12))
    return {"hour": set(range(0, 24, step)), "minute": 0, "second": 0}


def sync_cron(settings: Settings) -> CronJob:
    """The cron spec ENGINE lists in `WorkerSettings.cron_jobs`."""
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
