"""`Runtime`: everything a worker or API process holds open, built once and closed once.

`open_runtime(settings, runner=...)` builds one httpx.AsyncClient, the Proxmox client on
it, the DB engine and session factory, the snapshot store (MongoDB or SQL), the job queue
(arq when `REDIS_URL` is set, else in-process consumers that call `runner`) and the clone
caps (in Redis, cluster-wide, when it is configured: `WORKER_CLONE_CAPS_REDIS_URL` or
`REDIS_URL`, keys named by `clone_caps_prefix`). The runner is the caller's (normally
`openvle_core.handlers.run_operation`): this module knows no operation kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import Operation
from openvle_core.db.session import engine_from_settings, session_factory
from openvle_core.metrics import PrometheusObserver
from openvle_core.placement.caps import CloneCaps
from openvle_core.placement.slots import RedisSlots
from openvle_core.proxmox import PollSchedule, ProxmoxClient, RetryPolicy, build_http_client
from openvle_core.queue import ArqQueue, InProcessQueue, JobQueue
from openvle_core.redisconn import arq_settings, redis_client
from openvle_core.settings import RedisSettings, Settings
from openvle_core.snapshot import SnapshotStore, create_snapshot_store

Runner = Callable[["Runtime", str], Awaitable[Operation | None]]
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
    runner: Runner
    caps: CloneCaps
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    node_cpu: dict[str, float] = field(default_factory=dict)  # last CPU sample > 0 per node
    vmid_hint: tuple[int, float] | None = None  # (next free vmid hint, monotonic read time)

    async def run(self, op_id: str) -> Operation | None:
        """Run one operation in this process (see `OperationRunner`); returns it as this
        run finished it, or None (not run here, or the runner does not say)."""
        return await self.runner(self, op_id)


def clone_caps_prefix(settings: Settings) -> str:
    """The Redis key prefix of the clone caps: one budget per `WORKER_CLONE_CAPS_KEY`
    (default: the Proxmox host, so the instances of one cluster address share it)."""
    return f"openvle:clone-slots:{settings.worker.clone_caps_key or settings.proxmox.hostname}:"


def clone_caps_redis(settings: Settings) -> RedisSettings:
    """Where the clone caps live: `WORKER_CLONE_CAPS_REDIS_URL` (another instance's
    budget, a plain URL: no Sentinel, the system's CAs) or else `REDIS_*`."""
    url = settings.worker.clone_caps_redis_url
    if url is None:
        return settings.redis
    return settings.redis.model_copy(update={"url": url, "sentinels": "", "tls_ca_file": None})


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    runner: Runner,
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
            queue = await ArqQueue.connect(arq_settings(settings.redis))
        stack.push_async_callback(queue.close)
        slots = None
        caps_redis = clone_caps_redis(settings)
        if caps_redis.url is not None:
            redis = redis_client(caps_redis, timeout=REDIS_TIMEOUT)
            stack.push_async_callback(redis.aclose)
            slots = RedisSlots(redis, clone_caps_prefix(settings))
        caps = CloneCaps(settings.worker, slots)
        runtime = Runtime(settings, sessions, proxmox, snapshot, queue, runner, caps, lease_seconds)
        if isinstance(queue, InProcessQueue):
            queue.start(runtime.run)
        yield runtime
