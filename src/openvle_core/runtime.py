"""`Runtime`: everything a worker or API process holds open, built once and closed once.

`open_runtime(settings)` builds one httpx.AsyncClient, the Proxmox client on it, the DB
engine and session factory, the snapshot store (MongoDB or SQL), the job queue (arq
when `REDIS_URL` is set, else in-process consumers running `run_operation`) and, with
Redis, the cluster-wide clone slots.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.session import engine_from_settings, session_factory
from openvle_core.metrics import PrometheusObserver
from openvle_core.placement.slots import RedisSlots
from openvle_core.proxmox import PollSchedule, ProxmoxClient, RetryPolicy, build_http_client
from openvle_core.queue import ArqQueue, InProcessQueue, JobQueue
from openvle_core.settings import Settings
from openvle_core.snapshot import SnapshotStore, create_snapshot_store

DEFAULT_LEASE_SECONDS = 30.0
REDIS_TIMEOUT = 5.0  # seconds per Redis call of the clone slots: a stalled Redis fails them


@dataclass
class Runtime:
    """Open resources of one process; `lease_seconds` bounds how long a dead runner blocks."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    proxmox: ProxmoxClient
    snapshot: SnapshotStore
    queue: JobQueue
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    node_cpu: dict[str, float] = field(default_factory=dict)
    clone_slots: RedisSlots | None = None  # cluster-wide clone caps when Redis is configured


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    in_process: bool | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    poll: PollSchedule | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[Runtime]:
    """Build the runtime; `in_process` forces the in-process queue (default: no REDIS_URL)."""
    async with contextlib.AsyncExitStack() as stack:
        http = build_http_client(settings.proxmox)
        stack.push_async_callback(http.aclose)
        proxmox = ProxmoxClient(
            http, settings.proxmox, retry=retry, observer=PrometheusObserver(), poll=poll
        )
        engine = engine_from_settings(settings.database)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        snapshot = create_snapshot_store(settings.mongodb, sessions)
        stack.push_async_callback(snapshot.close)
        use_local = settings.redis.url is None if in_process is None else in_process
        queue: JobQueue
        if use_local or settings.redis.url is None:
            queue = InProcessQueue(settings.worker.max_jobs)
        else:
            queue = await ArqQueue.connect(settings.redis.url.get_secret_value())
        stack.push_async_callback(queue.close)
        slots = None
        if settings.redis.url is not None:
            redis = Redis.from_url(
                settings.redis.url.get_secret_value(),
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
            stack.push_async_callback(redis.aclose)
            slots = RedisSlots(redis, f"openvle:clone-slots:{settings.proxmox.hostname}:")
        runtime = Runtime(
            settings, sessions, proxmox, snapshot, queue, lease_seconds, clone_slots=slots
        )
        if isinstance(queue, InProcessQueue):
            queue.start(lambda op_id: _run(runtime, op_id))
        yield runtime


async def _run(runtime: Runtime, op_id: str) -> None:
    from openvle_core.operations.service import run_operation

    await run_operation(runtime, op_id)
