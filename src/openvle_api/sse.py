"""Server-Sent Events: operation progress and the changelog, by polling the database.

Polling the row (every `POLL_SECONDS`) works the same with one process or many, with
SQLite or MariaDB, and needs no message bus. Streams end when the app shuts down. An
event deploy or archive also reads its VMs and child operations on each poll (two
indexed reads) and sends only the VMs that changed since the last one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_api.schemas.changelog import ChangeOut
from openvle_api.schemas.operations import batch_vm_out, operation_out
from openvle_core.changelog import queries as changelog
from openvle_core.db.enums import IN_FLIGHT_STATES
from openvle_core.events.progress import VmProgress, vm_progress
from openvle_core.events.queries import BatchVms, batch_vms
from openvle_core.operations.queries import find_operation

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of Server-Sent Events (`event:`, `id:`, JSON `data:`).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
_IN_FLIGHT = {s.value for s in IN_FLIGHT_STATES}


def frame(event: str, data: Any, event_id: str | int | None = None) -> str:
    """One SSE message."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return "\n".join(lines) + "\n\n"


async def _wait(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds`; True if `stop` was set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def operation_events(
    sessions: async_sessionmaker[AsyncSession],
    op_id: str,
    stop: asyncio.Event | None = None,
    poll: float = POLL_SECONDS,
) -> AsyncIterator[str]:
    """`state` when the state changes, `progress` when progress moves, `vm` and
    `vm_removed` for the VMs of a deploy or archive; ends when done."""
    last: tuple[str, int, int] | None = None
    seen: dict[str, VmProgress] = {}
    idle = 0.0
    while True:
        async with sessions() as session:
            op = await find_operation(session, op_id)
            batch = None if op is None else await batch_vms(session, op)
        if op is None:
            yield frame("gone", {"id": op_id})
            return
        if batch is not None:
            for message in vm_frames(batch, seen):
                yield message
                idle = 0.0
        now = (op.state, op.progress_done, op.progress_total)
        if last is None or now != last:
            kind = "state" if last is None or now[0] != last[0] else "progress"
            yield frame(kind, operation_out(op).model_dump(mode="json"))
            last, idle = now, 0.0
        elif idle >= HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"
            idle = 0.0
        if op.state not in _IN_FLIGHT or await _wait(stop, poll):
            return
        idle += poll


def vm_frames(batch: BatchVms, seen: dict[str, VmProgress]) -> list[str]:
    """`vm` for each VM new or changed since `seen` (updated in place), `vm_removed` for
    each one gone. Unchanged VMs cost a comparison, not a serialisation."""
    frames: list[str] = []
    current = {vm.id: vm for vm in vm_progress(batch)}
    for vm_id, vm in current.items():
        if seen.get(vm_id) != vm:
            frames.append(frame("vm", batch_vm_out(vm).model_dump(mode="json")))
    frames.extend(frame("vm_removed", {"id": gone}) for gone in seen.keys() - current.keys())
    seen.clear()
    seen.update(current)
    return frames


async def changelog_events(
    sessions: async_sessionmaker[AsyncSession],
    after_id: int | None,
    stop: asyncio.Event | None = None,
    poll: float = POLL_SECONDS,
) -> AsyncIterator[str]:
    """Every changelog entry written after `after_id` (None: from now on), as `change`."""
    if after_id is None:
        async with sessions() as session:
            after_id = await changelog.latest_change_id(session)
    yield ": stream open\n\n"
    idle = 0.0
    while True:
        async with sessions() as session:
            entries = await changelog.changes_after(session, after_id)
        for entry in entries:
            data = ChangeOut.model_validate(entry).model_dump(mode="json")
            yield frame("change", data, entry.id)
            after_id = entry.id
        if entries:
            idle = 0.0
        elif idle >= HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"
            idle = 0.0
        if await _wait(stop, poll):
            return
        idle += poll
