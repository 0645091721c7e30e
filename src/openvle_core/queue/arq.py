"""Jobs through arq (Redis): the API enqueues `run_operation_job(op_id)`.

Each enqueue gets its own arq job id: a duplicate delivery is harmless (the operation's
lease decides who runs it), while a fixed id would block re-enqueueing after a crash
until arq's in-progress key expires.
"""

from __future__ import annotations

import secrets
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

JOB_FUNCTION = "run_operation_job"


def job_id(op_id: str) -> str:
    """A fresh arq job id for one delivery of an operation."""
    return f"op:{op_id}:{secrets.token_hex(4)}"


def redis_settings(url: str) -> RedisSettings:
    """arq's RedisSettings from a redis:// URL."""
    return RedisSettings.from_dsn(url)


class ArqQueue:
    """Enqueue operation ids as arq jobs."""

    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str) -> ArqQueue:
        """Open a pool to Redis at `url`."""
        return cls(await create_pool(redis_settings(url)))

    async def enqueue(self, op_id: str) -> None:
        """Queue `run_operation_job(op_id)`."""
        job: Any = await self.pool.enqueue_job(JOB_FUNCTION, op_id, _job_id=job_id(op_id))
        if job is None:  # only possible if the random id clashed: try once more
            await self.pool.enqueue_job(JOB_FUNCTION, op_id, _job_id=job_id(op_id))

    async def close(self) -> None:
        """Close the Redis pool."""
        await self.pool.aclose()
