"""`openvle sync`: one sync as an operation, run in this process."""

from __future__ import annotations

from openvle_core.db.session import transaction
from openvle_core.operations.repository import OperationRepository
from openvle_core.operations.service import request_sync, run_operation
from openvle_core.runtime import open_runtime
from openvle_core.settings import Settings


async def sync_once(settings: Settings) -> tuple[str, str | None]:
    """Queue a sync operation, run it here, and return its final state and error."""
    async with open_runtime(settings, in_process=True) as runtime:
        async with transaction(runtime.sessions) as session:
            op = await request_sync(session)
        await run_operation(runtime, op.id)
        async with runtime.sessions() as session:
            done = await OperationRepository(session).require(op.id)
        return done.state, done.error_message
