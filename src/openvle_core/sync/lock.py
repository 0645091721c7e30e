"""One sync at a time per pool: a Redis lock with a TTL across processes, else a process lock.

The cron tick tries once and skips if a sync runs; an on-demand sync waits its turn.
The TTL bounds how long a crashed holder blocks the next sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from openvle_core.settings import Settings

MIN_LOCK_TTL_S = 300
POLL_S = 0.25
# Delete the lock only if it still holds our token (it may have expired and been retaken).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
_local_lock = asyncio.Lock()


def lock_ttl(settings: Settings) -> int:
    """How long a sync may hold the lock before another may start (crash safety)."""
    return max(MIN_LOCK_TTL_S, 5 * settings.worker.pve_periodic_interval)


def lock_key(settings: Settings) -> str:
    """One lock per pool: two OpenVLE instances with their own pools sync independently."""
    return f"openvle:sync-lock:{settings.proxmox.vms_pool}"


@contextlib.asynccontextmanager
async def sync_lock(
    redis: Redis | None, settings: Settings, *, wait: float = 0.0
) -> AsyncIterator[bool]:
    """Yield True while holding the lock, False if it stayed taken for `wait` seconds."""
    if redis is None:
        async with _local(wait) as acquired:
            yield acquired
        return
    key, token = lock_key(settings), secrets.token_hex(16)
    deadline = time.monotonic() + wait
    while not await redis.set(key, token, nx=True, ex=lock_ttl(settings)):
        if time.monotonic() >= deadline:
            yield False
            return
        await asyncio.sleep(POLL_S)
    try:
        yield True
    finally:
        await redis.eval(_RELEASE, 1, key, token)  # type: ignore[misc]  # redis-py: Awaitable | Any


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
    client = Redis.from_url(settings.redis.url.get_secret_value())
    try:
        yield client
    finally:
        await client.aclose()
