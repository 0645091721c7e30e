"""The "sync" operation kind: `request_sync` + `run_operation` run the sync on demand."""

from __future__ import annotations

import asyncio

from openvle_core.db.enums import OperationState
from openvle_core.db.session import transaction
from openvle_core.operations.repository import OperationRepository
from openvle_core.operations.service import request_sync, run_operation
from openvle_core.queue import InProcessQueue
from openvle_core.reconcile.lock import sync_lock
from openvle_core.runtime import Runtime
from tests.reconcile.kit import Harness


def runtime_of(h: Harness) -> Runtime:
    return Runtime(
        settings=h.settings,
        sessions=h.sessions,
        proxmox=h.proxmox,
        snapshot=h.snapshot,
        queue=InProcessQueue(),
    )


async def run_sync_operation(h: Harness) -> tuple[str, dict[str, object] | None, str | None]:
    async with transaction(h.sessions) as session:
        op = await request_sync(session)
    await run_operation(runtime_of(h), op.id)
    async with h.sessions() as session:
        done = await OperationRepository(session).require(op.id)
        return done.state, done.result, done.error_type


async def test_a_requested_sync_runs_and_keeps_its_counts(harness: Harness) -> None:
    state, result, _ = await run_sync_operation(harness)
    assert state == OperationState.SUCCEEDED
    assert result is not None
    assert result["templates_imported"] == 3


async def test_a_failed_sync_fails_its_operation_with_the_reason(harness: Harness) -> None:
    harness.sim.faults.add("status", "/cluster/resources", status=502, n=50)
    state, result, error_type = await run_sync_operation(harness)
    assert (state, error_type) == (OperationState.FAILED, "SyncFailed")
    assert result is not None
    assert str(result["error"]).startswith("ProxmoxUnavailable")


async def test_a_requested_sync_waits_for_a_running_one(harness: Harness) -> None:
    async with sync_lock(None, harness.settings) as held:
        assert held
        waiting = asyncio.create_task(run_sync_operation(harness))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # still waiting for the lock
    state, _, _ = await waiting
    assert state == OperationState.SUCCEEDED
