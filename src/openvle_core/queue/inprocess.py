"""Jobs as asyncio tasks in this process: a bounded set of consumers on an asyncio.Queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from openvle_core.metrics import QUEUE_DEPTH, WORKER_JOB_CRASHES

log = logging.getLogger(__name__)
CLOSE_RECHECK_S = 1.0
Runner = Callable[[str], Awaitable[object]]


class InProcessQueue:
    """`enqueue` puts an id on a local queue; `start(runner)` runs `concurrency` consumers."""

    shared = False  # only this process takes its jobs

    def __init__(self, concurrency: int = 10) -> None:
        self.concurrency = concurrency
        self._queue: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        self._pending: set[tuple[str, str]] = set()
        self._consumers: list[asyncio.Task[None]] = []
        self._runner: Runner | None = None
        self._active = 0

    def start(self, runner: Runner) -> None:
        """Begin consuming with `runner` (normally `run_operation` bound to a runtime)."""
        self._runner = runner
        for n in range(self.concurrency):
            self._consumers.append(asyncio.create_task(self._consume(), name=f"openvle-job-{n}"))

    async def enqueue(self, op_id: str, *, key: str | None = None) -> None:
        """Queue an operation id (dropped if the same `key` for it is still pending)."""
        if key is not None:
            if (op_id, key) in self._pending:
                return
            self._pending.add((op_id, key))
        await self._queue.put((op_id, key))
        QUEUE_DEPTH.set(self._queue.qsize())

    async def ensure_reachable(self) -> None:
        """Always reachable: the queue lives in this process."""

    async def _consume(self) -> None:
        while True:
            op_id, key = await self._queue.get()
            if key is not None:
                self._pending.discard((op_id, key))
            QUEUE_DEPTH.set(self._queue.qsize())
            self._active += 1
            try:
                if self._runner is not None:
                    await self._runner(op_id)
            except Exception:  # run_operation marked the row failed; the consumer lives on
                WORKER_JOB_CRASHES.labels("inprocess").inc()
                log.exception("job for operation %s failed outside the operation", op_id)
            finally:
                self._active -= 1
                self._queue.task_done()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running."""
        return self._queue.empty() and self._active == 0

    async def join(self) -> None:
        """Wait until every queued job ran (tests, graceful shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        """Cancel the consumers (running jobs resume after a restart via recovery). A
        consumer whose cancel was swallowed on its way (a library may do that when a
        cancel meets its own timeout or cleanup) is cancelled again until it stops."""
        pending = set(self._consumers)
        while pending:  # a cancel aimed at the closer itself still propagates
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CLOSE_RECHECK_S)
        self._consumers.clear()
