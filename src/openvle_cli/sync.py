"""`openvle sync`: one sync as an operation, run in this process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openvle_core.db.session import transaction
from openvle_core.handlers import run_operation
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


async def sync_once(settings: Settings) -> SyncOutcome:
    """Queue a sync operation, run it here, and return how it ended with its counts."""
    async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
        async with transaction(runtime.sessions) as session:
            op = await request_sync(session)
        await runtime.run(op.id)
        async with runtime.sessions() as session:
            done = await get_operation(session, op.id)
        return SyncOutcome(done.state, done.error_message, dict(done.result or {}))


def format_counts(counts: dict[str, Any]) -> list[str]:
    """`key=value` lines for the scalar counts (lists such as unmanaged_vmids are left out)."""
    return [
        f"{key}={value}"
        for key, value in counts.items()
        if not isinstance(value, list | dict) and key not in {"ok", "error"}
    ]
