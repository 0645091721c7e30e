"""`openvle sync`: one sync as an operation, run in this process.

When a sync is already in flight (the worker's periodic one, or another `openvle sync`),
a second one would be refused (`TargetBusy`); this command then waits for that one and
reports its outcome instead, so a one-shot sync at start-up (compose) never fails for
arriving second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from openvle_core.db.enums import IN_FLIGHT_STATES
from openvle_core.db.session import transaction
from openvle_core.handlers import run_operation
from openvle_core.operations.errors import TargetBusy
from openvle_core.operations.queries import get_operation
from openvle_core.runtime import open_runtime
from openvle_core.settings import Settings
from openvle_core.sync.service import request_sync


@dataclass(frozen=True)
class SyncOutcome:
    """The sync operation's final state, its error, and the SyncResult counts it stored."""

    state: str
    error: str | None
    counts: dict[str, Any] = field(default_factory=dict)
    joined: str | None = None  # the id of the sync already in flight that this one waited for


POLL_S = 0.5


async def sync_once(settings: Settings, wait_s: float = 600.0) -> SyncOutcome:
    """Queue a sync operation, run it here, and return how it ended with its counts; if
    one is in flight already, wait up to `wait_s` for it and return its outcome."""
    async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
        for _ in range(20):  # the holder may be finishing: then the next request goes in
            try:
                async with transaction(runtime.sessions) as session:
                    op = await request_sync(session)
                break
            except TargetBusy as busy:
                if busy.holder_id is not None:
                    return await _wait_for(runtime.sessions, busy.holder_id, wait_s)
                await asyncio.sleep(POLL_S)
        else:
            return SyncOutcome("failed", "the sync lock stayed held by a finishing operation")
        await runtime.run(op.id)
        async with runtime.sessions() as session:
            done = await get_operation(session, op.id)
        return SyncOutcome(done.state, done.error_message, dict(done.result or {}))


async def _wait_for(sessions: Any, op_id: str, wait_s: float) -> SyncOutcome:
    deadline = time.monotonic() + wait_s
    while True:
        async with sessions() as session:
            op = await get_operation(session, op_id)
        if op.state not in IN_FLIGHT_STATES:
            return SyncOutcome(op.state, op.error_message, dict(op.result or {}), op_id)
        if time.monotonic() >= deadline:
            message = f"a sync already in flight ({op_id}) did not end within {wait_s:.0f} s"
            return SyncOutcome(op.state, message, {}, op_id)
        await asyncio.sleep(POLL_S)


def format_counts(counts: dict[str, Any]) -> list[str]:
    """`key=value` lines for the scalar counts (lists such as unmanaged_vmids are left out)."""
    return [
        f"{key}={value}"
        for key, value in counts.items()
        if not isinstance(value, list | dict) and key not in {"ok", "error"}
    ]
