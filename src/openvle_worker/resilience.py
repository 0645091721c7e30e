"""The arq worker riding out a Redis outage instead of exiting.

arq's own loop ends on the first `ConnectionError` of a poll, and a job whose result
cannot be written after it ran raises out of the loop too. `ResilientWorker` keeps
polling with a bounded backoff (`RECONNECT_DELAYS`, then every `RECONNECT_MAX_S`) while
Redis is away, writes a finished job's bookkeeping once Redis is back, and lets a job
that Redis failed before it started run again. The process's `REDIS` tracker logs one
line when the outage starts and one when it ends (not one per attempt) and sets the
`openvle_dependency_up{dependency="redis"}` gauge; `worker_ready()` (or a worker's
`ready`) is what a readiness probe reports: the worker polled Redis and Redis answered.

Operations are unaffected by design: the database row is the truth, a job id only says
"look at this row", and a run twice is a no-op (the lease). A Redis call inside an
operation (the clone slots) fails as a transient step and is retried with the
operation's backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import signal
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import Worker

from openvle_core.availability import REDIS, Availability
from openvle_core.queue import REDIS_DOWN

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.25, 0.5, 1.0, 2.0)
RECONNECT_MAX_S = 4.0
"""Seconds between two tries while Redis is away: growing, then at most this (jittered)."""
BOOKKEEPING_PATIENCE_S = 600.0
"""How long a finished job's result waits for Redis before it is dropped (the row holds
the outcome; the job would only run again, as a no-op, when its in-progress key ends)."""

_current: weakref.ref[ResilientWorker] | None = None


def worker_ready() -> bool:
    """Whether this process's worker is polling Redis and Redis answers (readiness)."""
    return polling_state() is True


def polling_state() -> bool | None:
    """`worker_ready()`, or None when no arq worker runs in this process (embedded mode)."""
    worker = _current() if _current is not None else None
    return None if worker is None else worker.ready


def polling_problem() -> str | None:
    """Why this process's arq worker is not ready, in words; None when it is (or when
    no arq worker runs here)."""
    worker = _current() if _current is not None else None
    if worker is None or worker.ready:
        return None
    if not worker.polled:
        return "the worker has not polled Redis yet (starting, or Redis is away)"
    return "the worker's poll of Redis fails; it retries"


class Backoff:
    """Growing delays, capped and jittered; `reset()` after a success."""

    def __init__(self) -> None:
        self.attempt = 0

    def next(self) -> float:
        """The delay before the next try."""
        base = RECONNECT_DELAYS[self.attempt] if self.attempt < len(RECONNECT_DELAYS) else None
        self.attempt += 1
        if base is None:
            base = RECONNECT_MAX_S
        return base * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempt = 0


class ResilientWorker(Worker):
    """arq's `Worker` that waits for Redis to come back instead of exiting (see module)."""

    def __init__(self, *args: Any, link: Availability = REDIS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.link = link
        self.polled = False  # a poll has got through since the start
        self._backoff = Backoff()
        global _current
        _current = weakref.ref(self)

    @property
    def ready(self) -> bool:
        """The worker polled Redis and the last call to it answered."""
        return self.polled and self.link.available

    async def _poll_iteration(self) -> None:
        if not self.link.available:
            await asyncio.sleep(self._backoff.next())
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            self.link.lost(exc)
            return
        self._backoff.reset()
        self.polled = True
        self.link.restored()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, one id at a time: a job Redis failed to mark started gives its slot back
        (arq counts it before the first Redis call and would leak it)."""
        for one in job_ids:
            try:
                await super().start_jobs([one])
            except REDIS_DOWN:
                self.job_counter -= 1
                self.sem.release()
                raise

    async def run_job(self, job_id: str, score: int) -> None:
        """arq's; when Redis failed around the job (it could not be read, so it did not
        run), its in-progress mark is removed once Redis is back so it runs again."""
        try:
            await super().run_job(job_id, score)
        except REDIS_DOWN as exc:
            self.link.lost(exc)
            await self._when_back(lambda: self.pool.delete(in_progress_key_prefix + job_id))

    async def finish_job(self, *args: Any, **kwargs: Any) -> None:
        """arq's, written once Redis answers (a job that ended during an outage)."""
        await self._when_back(lambda: super(ResilientWorker, self).finish_job(*args, **kwargs))

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq's, written once Redis answers."""
        await self._when_back(
            lambda: super(ResilientWorker, self).finish_failed_job(job_id, result_data)
        )

    async def _when_back(self, call: Callable[[], Awaitable[Any]]) -> None:
        """Run `call` until Redis takes it (bounded by `BOOKKEEPING_PATIENCE_S`)."""
        backoff = Backoff()
        deadline = time.monotonic() + BOOKKEEPING_PATIENCE_S
        while True:
            try:
                await call()
            except REDIS_DOWN as exc:
                self.link.lost(exc)
                if time.monotonic() > deadline:
                    log.error("a job's bookkeeping was dropped: Redis away for too long")
                    return
                await asyncio.sleep(backoff.next())
                continue
            self.link.restored()
            return

    async def close(self) -> None:
        """arq's close, which also works while Redis is away (the runtime still closes)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if self._pool is None:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        try:
            await self.pool.delete(self.health_check_key)
        except REDIS_DOWN as exc:
            self.link.lost(exc)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None


async def connect(settings: RedisSettings, link: Availability = REDIS) -> ArqRedis:
    """arq's pool once Redis answers: a worker started while Redis is away waits for it
    (with the same backoff, one log line) instead of exiting."""
    once = dataclasses.replace(settings, conn_retries=0)  # our loop retries, quietly
    backoff = Backoff()
    while True:
        try:
            pool = await create_pool(once)
        except REDIS_DOWN as exc:
            link.lost(exc)
            await asyncio.sleep(backoff.next())
            continue
        link.restored()
        return pool
