"""The job queue port: carries only operation ids; the Operation row is the truth.

`InProcessQueue` runs jobs as asyncio tasks in this process (the embedded default, no
`REDIS_URL`); `ArqQueue` hands them to arq workers through Redis.
"""

from __future__ import annotations

from typing import Protocol

from openvle_core.queue.arq import ArqQueue, job_id
from openvle_core.queue.inprocess import InProcessQueue


class JobQueue(Protocol):
    """Where the API (after its commit) and the operations themselves put operation ids to run."""

    async def enqueue(self, op_id: str, *, key: str | None = None) -> None:
        """Ask for `run_operation(op_id)` to happen soon (duplicates are harmless).

        With `key`, a second enqueue of the same (op_id, key) while the first is still
        pending is dropped (the recovery scan uses this to avoid piling up jobs).
        """
        ...

    async def close(self) -> None:
        """Stop accepting work and release resources."""
        ...


__all__ = ["ArqQueue", "InProcessQueue", "JobQueue", "job_id"]
