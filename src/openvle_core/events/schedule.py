"""The event lifecycle cron: deploy events whose start has come, archive finished ones.

`run_schedule(runtime)` stages a deploy for every scheduled event whose `starts_at` minus
`WORKER_EVENT_LEAD_TIME` has passed (and has not ended), and an archive for every event
whose `ends_at` plus `WORKER_EVENT_TRANSITION_PERIOD` has passed, each in its own short
transaction, then enqueues the operations after the commit. Exactly once across any
number of workers: the status moves by a conditional UPDATE (`scheduled` -> `deploying`)
and the operation holds the event's unique guard, so a second worker's tick finds the
event already moved (`EventBusy`) or held (`TargetBusy`) and skips it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Operation
from openvle_core.db.session import note_unavailable, transaction
from openvle_core.db.types import utcnow
from openvle_core.errors import ConflictError
from openvle_core.events.errors import CapacityExceeded
from openvle_core.events.repository import EventRepository
from openvle_core.events.service import (
    CRON_ARCHIVABLE,
    CRON_DEPLOYABLE,
    request_archive,
    request_deploy,
)
from openvle_core.metrics import EVENT_DEPLOYS_REFUSED
from openvle_core.settings import Settings

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

log = logging.getLogger(__name__)
EVENTS_JOB_NAME = "events_tick"
EVENTS_INTERVAL_S = 60.0


@dataclass
class ScheduleResult:
    """What one tick did: operations queued per event id, events left to another worker."""

    deploys: dict[str, str] = field(default_factory=dict)
    archives: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)  # does not fit: the problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "deploys": self.deploys,
            "archives": self.archives,
            "skipped": self.skipped,
            "refused": self.refused,
        }


async def _due(runtime: Runtime, now: datetime) -> tuple[list[str], list[str]]:
    """Ids of events due for deploy and for archive."""
    worker = runtime.settings.worker
    async with transaction(runtime.sessions) as session:
        repo = EventRepository(session)
        deploy = await repo.due_for_deploy(now, timedelta(seconds=worker.event_lead_time))
        archive = await repo.due_for_archive(now, timedelta(seconds=worker.event_transition_period))
        return [e.id for e in deploy], [e.id for e in archive]


Stage = Callable[[AsyncSession, Settings, str], Awaitable[Operation]]


async def _stage(runtime: Runtime, stage: Stage, event_id: str) -> str | None:
    """Stage one operation in its own transaction; None if another worker got there first."""
    try:
        async with transaction(runtime.sessions) as session:
            op = await stage(session, runtime.settings, event_id)
    except CapacityExceeded:
        raise
    except ConflictError:  # EventBusy (status moved) or TargetBusy (operation in flight)
        return None
    await runtime.queue.enqueue(op.id)
    return op.id


async def _deploy(session: AsyncSession, settings: Settings, event_id: str) -> Operation:
    return await request_deploy(session, settings, event_id, allowed=CRON_DEPLOYABLE)


async def _archive(session: AsyncSession, settings: Settings, event_id: str) -> Operation:
    return await request_archive(session, event_id, allowed=CRON_ARCHIVABLE)


async def _refused(runtime: Runtime, event_id: str, exc: CapacityExceeded) -> None:
    """Record on the event why it was not deployed (the next tick checks again)."""
    EVENT_DEPLOYS_REFUSED.inc()
    log.warning("event %s not deployed: %s", event_id, exc.message)
    async with transaction(runtime.sessions) as session:
        await EventRepository(session).set_status_reason(event_id, exc.message)


async def run_schedule(runtime: Runtime, now: datetime | None = None) -> ScheduleResult:
    """One tick of the event lifecycle (see the module docstring)."""
    result = ScheduleResult()
    to_deploy, to_archive = await _due(runtime, now or utcnow())
    for event_id in to_deploy:
        try:
            op_id = await _stage(runtime, _deploy, event_id)
        except CapacityExceeded as exc:
            await _refused(runtime, event_id, exc)
            result.refused[event_id] = exc.problems
            continue
        if op_id is None:
            result.skipped.append(event_id)
        else:
            result.deploys[event_id] = op_id
    for event_id in to_archive:
        op_id = await _stage(runtime, _archive, event_id)
        if op_id is None:
            result.skipped.append(event_id)
        else:
            result.archives[event_id] = op_id
    return result


async def events_tick(ctx: dict[str, Any]) -> dict[str, Any]:
    """The cron job (arq and the in-process scheduler): one `run_schedule`; while the
    database is unavailable, none (the outage is logged once, not per tick)."""
    runtime: Runtime = ctx["runtime"]
    try:
        return (await run_schedule(runtime)).as_dict()
    except SQLAlchemyError as exc:
        if not note_unavailable(exc):
            raise
        return {"ok": False, "not_run": "the database is unavailable"}
