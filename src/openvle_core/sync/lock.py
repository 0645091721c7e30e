"""One sync at a time per pool: a renewed Redis lock across processes, else a process lock.

The cron tick tries once and skips if a sync runs; an on-demand sync waits its turn.
Across processes the lock is redis-py's `Lock` (a key holding our token, `SET NX PX`,
released only by its holder) with a short lease (`LEASE_S`) that a background task
renews every third of it (`reacquire`) for as long as the sync runs: a sync of any
length keeps it, and a holder that crashed frees it within one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from openvle_core.metrics import SYNC_LOCK_LOST
from openvle_core.redisconn import redis_client
from openvle_core.settings import Settings

log = logging.getLogger(__name__)

LEASE_S = 30.0
MIN_SYNC_TIMEOUT_S = 300
POLL_S = 0.25
_local_lock = asyncio.Lock()


def sync_timeout(settings: Settings) -> int:
    """How long one sync may run (the cron job's timeout) and an on-demand sync waits."""
    return max(MIN_SYNC_TIMEOUT_S, 5 * settings.worker.pve_periodic_interval)


def lock_key(settings: Settings) -> str:
    """One lock per pool: two OpenVLE instances with their own pools sync independently."""
    return f"openvle:sync-lock:{settings.proxmox.vms_pool}"


@contextlib.asynccontextmanager
async def sync_lock(
    redis: Redis | None, settings: Settings, *, wait: float = 0.0, lease: float = LEASE_S
) -> AsyncIterator[bool]:
    """Yield True while holding the lock, False if it stayed taken for `wait` seconds."""
    if redis is None:
        async with _local(wait) as acquired:
            yield acquired
        return
    lock = Lock(redis, lock_key(settings), timeout=lease, sleep=POLL_S, thread_local=False)
    if not await lock.acquire(blocking=wait > 0, blocking_timeout=wait):
        yield False
        return
    renewer = asyncio.create_task(_renew(lock, lease))
    try:
        yield True
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await _release(lock)


async def _renew(lock: Lock, lease: float) -> None:
    """Reset the lock's TTL to `lease` every third of it until cancelled or lost."""
    while True:
        await asyncio.sleep(lease / 3)
        try:
            await lock.reacquire()
        except LockNotOwnedError:
            SYNC_LOCK_LOST.inc()
            log.error("sync lock %s lost while the sync ran (not renewed in time)", lock.name)
            return
        except RedisError as exc:  # a blip: two more tries before the lease ends
            log.warning("sync lock %s: renewal failed (%s); trying again", lock.name, exc)


async def _release(lock: Lock) -> None:
    """Delete the key if it still holds our token; an outage leaves it to expire."""
    try:
        await lock.release()
    except LockNotOwnedError:
        log.warning("sync lock %s had expired before its release", lock.name)
    except (LockError, RedisError) as exc:
        log.warning("sync lock %s not released (%s): it expires within its lease", lock.name, exc)


@contextlib.asynccontextmanager
async def _local(wait: float) -> AsyncIterator[bool]:
    """The in-process lock (embedded mode: one process runs every sync)."""
    if _local_lock.locked() and wait <= 0:
        yield False
        return
    try:
        await asyncio.wait_for(_local_lock.acquire(), timeout=wait or None)
    except TimeoutError:
        yield False
        return
    try:
        yield True
    finally:
        _local_lock.release()


@contextlib.asynccontextmanager
async def redis_for(settings: Settings) -> AsyncIterator[Redis | None]:
    """A Redis client on `REDIS_URL` for this block, or None without one."""
    if settings.redis.url is None:
        yield None
        return
    client = redis_client(settings.redis)
    try:
        yield client
    finally:
        await client.aclose()
