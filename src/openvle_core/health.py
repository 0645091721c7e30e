"""Readiness probes of the process's dependencies: database, queue, snapshot store, Proxmox.

Each probe answers a `Probe` and never raises: a failure's detail is logged, while the
probe's `reason` is short and class-level (no hostnames or URLs, since /health is open).
A database or Redis that cannot be reached is reported to its `availability` tracker,
which logs once per outage (probes run every few seconds).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass

from arq.constants import default_queue_name
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.availability import DATABASE, REDIS, Availability
from openvle_core.db.session import is_unavailable, ping
from openvle_core.proxmox import ProxmoxClient
from openvle_core.queue import REDIS_DOWN, ArqQueue, JobQueue, QueueUnavailable
from openvle_core.snapshot.port import SnapshotStore

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Probe:
    """How one dependency answered: `reason` is safe to show to anyone."""

    ok: bool
    reason: str | None = None


async def _probe(
    component: str, check: Awaitable[object], tracker: Availability | None = None
) -> Probe:
    """Run `check` with a timeout; any failure becomes a short reason (detail is logged,
    or, for an outage of the database or Redis, noted once by its tracker)."""
    try:
        await asyncio.wait_for(check, PROBE_TIMEOUT)
    except TimeoutError:
        if tracker is not None:
            tracker.lost(f"no answer within {PROBE_TIMEOUT:.0f} s")
        else:
            log.warning("readiness: %s did not answer within %.0f s", component, PROBE_TIMEOUT)
        return Probe(ok=False, reason=f"{component} did not answer in time")
    except Exception as exc:  # a probe reports every failure; that is its whole job
        if is_unavailable(exc):
            DATABASE.lost(exc)
        elif isinstance(exc, (QueueUnavailable, *REDIS_DOWN)):
            REDIS.lost(exc)
        else:
            log.warning("readiness: %s failed: %s: %s", component, type(exc).__name__, exc)
        return Probe(ok=False, reason=f"{component} unavailable ({type(exc).__name__})")
    return Probe(ok=True)


async def check_database(sessions: async_sessionmaker[AsyncSession]) -> Probe:
    """The database answers a trivial query."""
    return await _probe("database", ping(sessions), DATABASE)


async def check_queue(queue: JobQueue) -> Probe:
    """Redis answers a ping (arq); the in-process queue is always there."""
    if isinstance(queue, ArqQueue):
        return await _probe("queue", queue.ensure_reachable(), REDIS)
    return Probe(ok=True, reason="in-process")


async def check_snapshot(store: SnapshotStore) -> Probe:
    """The snapshot store (MongoDB or SQL) answers its ping."""
    return await _probe("snapshot", store.ping())


async def proxmox_reachable(client: ProxmoxClient) -> Probe:
    """Proxmox answers /version (reported only: it does not fail readiness)."""
    probe = await _probe("proxmox", client.version())
    return probe if not probe.ok else Probe(ok=True, reason="reachable")


async def queue_depth(queue: JobQueue) -> int | None:
    """Jobs waiting in Redis (arq); None for a queue that keeps its own gauge (in-process)."""
    depth = getattr(queue, "depth", None)
    if callable(depth):  # a queue that can tell its depth itself is asked first
        return int(await depth())
    if isinstance(queue, ArqQueue):
        return int(await queue.pool.zcard(default_queue_name))
    return None
