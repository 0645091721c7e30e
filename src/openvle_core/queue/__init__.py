"""The job queue port: carries only operation ids; the Operation row is the truth.

`InProcessQueue` runs jobs as asyncio tasks in this process (the embedded default, no
`REDIS_URL`); `ArqQueue` hands them to arq workers through Redis.
"""

from __future__ import annotations

from typing import Protocol

from openvle_core.queue.arq import REDIS_DOWN, ArqQueue, job_id
from openvle_core.queue.errors import QueueUnavailable
from openvle_core.queue.inprocess import InProcessQueue


class JobQueue(Protocol):
    """Where the API (after its commit) and the operations themselves put operation ids to run."""

    shared: bool
    """True when several processes take jobs from it (arq): an event spreads its VMs."""

    async def enqueue(self, op_id: str, *, key: str | None = None) -> None:
        """Ask for `run_operation(op_id)` to happen soon (duplicates are harmless).

        With `key`, a second enqueue of the same (op_id, key) while the first is still
        pending is dropped (the recovery scan uses this to avoid piling up jobs).
        `QueueUnavailable` when the queue cannot be reached (nothing was queued).
        """
        ...

    async def ensure_reachable(self) -> None:
        """`QueueUnavailable` unless the queue answers now (checked before a commit)."""
        ...

    async def close(self) -> None:
        """Stop accepting work and release resources."""
        ...


__all__ = ["REDIS_DOWN", "ArqQueue", "InProcessQueue", "JobQueue", "QueueUnavailable", "job_id"]
