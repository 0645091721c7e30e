"""Clone slots shared by every worker on one Redis, so the caps hold cluster-wide.

Each slot key (`node:pve1`, `storage:ceph`, `full:local-lvm:pve2`) is a sorted set of
holder ids scored by when their lease ends. Taking a slot is one Lua script: drop
expired holders, then add ours if fewer than `size` remain. The time is Redis's own
(`TIME`), so workers' clocks do not matter. A holder renews its lease every third of it
while the clone runs; a worker that dies loses its slots when the lease ends (30 s). A
holder whose lease ran out (Redis unreachable for a whole lease) is not put back, since
another clone may have its place: that is logged and counted as a lost lease.
Waiters poll every 100-200 ms (jittered): not first-come first-served across workers,
but no waiter backs off behind newcomers. Redis failing at take time raises
`TransientStep`, so the clone is retried with the operation's backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from openvle_core.errors import TransientStep
from openvle_core.metrics import CLONE_SLOT_ERRORS, CLONE_SLOT_WAIT

log = logging.getLogger(__name__)

_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 2000))
  return 1
end
return 0
"""
_RENEW = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not until_ or tonumber(until_) <= now then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 2000))
return 1
"""
_ABANDON = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], 1, 'PX', math.ceil(tonumber(ARGV[2]) * 1000))
return 1
"""
POLL = (0.1, 0.2)
"""Seconds between two tries of a waiter (uniformly drawn)."""
_background: set[asyncio.Task[None]] = set()  # releases that must outlive a cancelled hold


class RedisSlots:
    """Counting semaphores in Redis, keyed by slot; `hold(key, size)` while a clone runs."""

    def __init__(self, redis: Redis, prefix: str, *, lease: float = 30.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.lease = lease
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)
        self._abandon = redis.register_script(_ABANDON)

    def name(self, key: tuple[str, ...]) -> str:
        """The Redis key of slot `key`."""
        return self.prefix + ":".join(key)

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, ...], size: int) -> AsyncIterator[None]:
        """Wait for a place among `size` holders of `key`, keep it while the block runs."""
        name, holder = self.name(key), uuid.uuid4().hex
        started = time.monotonic()
        while not await self._try_take(name, holder, size):  # noqa: ASYNC110  # polls Redis
            await asyncio.sleep(random.uniform(*POLL))
        CLONE_SLOT_WAIT.labels(key[0]).observe(time.monotonic() - started)
        renewing = asyncio.create_task(self._keep(name, holder))
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.wait([renewing])  # a cancel aimed at us still propagates
            await self._release(name, holder)

    async def _try_take(self, name: str, holder: str, size: int) -> bool:
        keys = [name, f"{name}:gone:{holder}"]
        try:
            return bool(await self._take(keys=keys, args=[holder, size, self.lease]))
        except (RedisError, OSError) as exc:
            self._abandon_later(keys, holder)  # the script may have run before the error
            raise TransientStep(f"clone slots in Redis unavailable: {exc}") from exc
        except BaseException:  # cancelled while the script may have run: give it back
            self._abandon_later(keys, holder)
            raise

    def _abandon_later(self, keys: list[str], holder: str) -> None:
        """Remove `holder` and bar it for a lease, whichever of take and this runs first."""

        async def abandon() -> None:
            try:
                await self._abandon(keys=keys, args=[holder, self.lease])
            except (RedisError, OSError) as exc:  # the lease frees it within self.lease
                CLONE_SLOT_ERRORS.labels("release").inc()
                log.warning("clone slot %s: not given back (lease ends it): %s", keys[0], exc)

        task = asyncio.get_running_loop().create_task(abandon())
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _keep(self, name: str, holder: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await self._renew(keys=[name], args=[holder, self.lease]):
                    CLONE_SLOT_ERRORS.labels("lost").inc()
                    log.warning("clone slot %s: lease lost, the clone runs over the cap", name)
                    return
            except (RedisError, OSError) as exc:  # the next renewal tries again
                CLONE_SLOT_ERRORS.labels("renew").inc()
                log.warning("clone slot %s: lease not renewed: %s", name, exc)

    async def _release(self, name: str, holder: str) -> None:
        try:
            await self.redis.zrem(name, holder)
        except (RedisError, OSError) as exc:  # the lease frees it within self.lease
            CLONE_SLOT_ERRORS.labels("release").inc()
            log.warning("clone slot %s: not released (lease ends it): %s", name, exc)
