"""Jobs through arq (Redis): the API enqueues `run_operation_job(op_id)`.

Each enqueue gets its own arq job id: a duplicate delivery is harmless (the operation's
lease decides who runs it), while a fixed id would block re-enqueueing after a crash
until arq's in-progress key expires. The recovery scan passes a `key` (state, attempt,
time bucket) so that it adds at most one job per operation per bucket.

Redis unreachable (refused, reset, timed out) raises `QueueUnavailable`, nothing queued,
and marks the process's `REDIS` tracker (one log line per outage); the next call that
gets through ends the outage.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable
from typing import Any, TypeVar

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout

from openvle_core.availability import REDIS
from openvle_core.queue.errors import QueueUnavailable

JOB_FUNCTION = "run_operation_job"
REDIS_DOWN = (RedisConnectionError, RedisTimeout, OSError)
"""What Redis raises when it cannot be reached (not a bad command)."""
PING_TIMEOUT = 2.0  # seconds the API waits for Redis before it stages an operation
T = TypeVar("T")


def job_id(op_id: str, key: str | None = None) -> str:
    """The arq job id of one delivery: fresh, or fixed by `key` (arq drops duplicates)."""
    return f"op:{op_id}:{key or secrets.token_hex(4)}"


class ArqQueue:
    """Enqueue operation ids as arq jobs."""

    shared = True  # every worker on this Redis takes its jobs

    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, redis: RedisSettings | str) -> ArqQueue:
        """Open a pool to Redis (`openvle_core.redisconn.arq_settings`, or a redis:// URL)."""
        settings = RedisSettings.from_dsn(redis) if isinstance(redis, str) else redis
        return cls(await create_pool(settings))

    async def enqueue(self, op_id: str, *, key: str | None = None) -> None:
        """Queue `run_operation_job(op_id)`; with `key`, at most one such job exists.

        `QueueUnavailable` when Redis cannot be reached (the job was not queued)."""
        job: Any = await self._call(
            self.pool.enqueue_job(JOB_FUNCTION, op_id, _job_id=job_id(op_id, key))
        )
        if job is None and key is None:  # a random id clashed: try once more
            await self._call(self.pool.enqueue_job(JOB_FUNCTION, op_id, _job_id=job_id(op_id)))

    async def ensure_reachable(self) -> None:
        """Ping Redis (bounded): `QueueUnavailable` if it does not answer."""
        await self._call(asyncio.wait_for(self.pool.ping(), PING_TIMEOUT))

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            result = await call
        except (*REDIS_DOWN, TimeoutError) as exc:
            REDIS.lost(exc)
            raise QueueUnavailable("the job queue (Redis) is unavailable; try again later") from exc
        REDIS.restored()
        return result

    async def close(self) -> None:
        """Close the Redis pool."""
        await self.pool.aclose()
