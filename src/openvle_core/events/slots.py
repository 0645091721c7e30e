"""Clone slots shared by every worker on one Redis, so the caps hold cluster-wide.

Each slot key (`node:pve1`, `storage:ceph`, `full:local-lvm:pve2`) is a sorted set of
holder ids scored by when their lease ends. Taking a slot is one Lua script: drop
expired holders, then add ours if fewer than `size` remain. The time is Redis's own
(`TIME`), so workers' clocks do not matter. A holder renews its lease every third of it
while the clone runs; a worker that dies loses its slots when the lease ends (30 s).
Waiters poll with jittered backoff (50 ms to 1 s): clones take seconds to minutes.
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

from openvle_core.metrics import CLONE_SLOT_ERRORS, CLONE_SLOT_WAIT

log = logging.getLogger(__name__)

_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
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
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 2000))
return 1
"""


class RedisSlots:
    """Counting semaphores in Redis, keyed by slot; `hold(key, size)` while a clone runs."""

    def __init__(self, redis: Redis, prefix: str, *, lease: float = 30.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.lease = lease
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)

    def name(self, key: tuple[str, ...]) -> str:
        """The Redis key of slot `key`."""
        return self.prefix + ":".join(key)

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, ...], size: int) -> AsyncIterator[None]:
        """Wait for a place among `size` holders of `key`, keep it while the block runs."""
        name, holder = self.name(key), uuid.uuid4().hex
        delay, started = 0.05, time.monotonic()
        while not await self._take(keys=[name], args=[holder, size, self.lease]):
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 1.0)
        CLONE_SLOT_WAIT.labels(key[0]).observe(time.monotonic() - started)
        renewing = asyncio.create_task(self._keep(name, holder))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self._release(name, holder)

    async def _keep(self, name: str, holder: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._renew(keys=[name], args=[holder, self.lease])
            except (RedisError, OSError) as exc:  # the next renewal tries again
                CLONE_SLOT_ERRORS.labels("renew").inc()
                log.warning("clone slot %s: lease not renewed: %s", name, exc)

    async def _release(self, name: str, holder: str) -> None:
        try:
            await self.redis.zrem(name, holder)
        except (RedisError, OSError) as exc:  # the lease frees it within self.lease
            CLONE_SLOT_ERRORS.labels("release").inc()
            log.warning("clone slot %s: not released (lease ends it): %s", name, exc)
