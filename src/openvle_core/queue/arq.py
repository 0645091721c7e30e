"""Jobs through arq (Redis): the API enqueues `run_operation_job(op_id)`.

Each enqueue gets its own arq job id: a duplicate delivery is harmless (the operation's
lease decides who runs it), while a fixed id would block re-enqueueing after a crash
until arq's in-progress key expires. The recovery scan passes a `key` (state, attempt,
time bucket) so that it adds at most one job per operation per bucket.
"""

from __future__ import annotations

import secrets
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

JOB_FUNCTION = "run_operation_job"


def job_id(op_id: str, key: str | None = None) -> str:
    """The arq job id of one delivery: fresh, or fixed by `key` (arq drops duplicates)."""
    return f"op:{op_id}:{key or secrets.token_hex(4)}"


class ArqQueue:
    """Enqueue operation ids as arq jobs."""

    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, redis: RedisSettings | str) -> ArqQueue:
        """Open a pool to Redis (`openvle_core.redisconn.arq_settings`, or a redis:// URL)."""
        settings = RedisSettings.from_dsn(redis) if isinstance(redis, str) else redis
        return cls(await create_pool(settings))

    async def enqueue(self, op_id: str, *, key: str | None = None) -> None:
        """Queue `run_operation_job(op_id)`; with `key`, at most one such job exists."""
        job: Any = await self.pool.enqueue_job(JOB_FUNCTION, op_id, _job_id=job_id(op_id, key))
        if job is None and key is None:  # a random id clashed: try once more
            await self.pool.enqueue_job(JOB_FUNCTION, op_id, _job_id=job_id(op_id))

    async def close(self) -> None:
        """Close the Redis pool."""
        await self.pool.aclose()
