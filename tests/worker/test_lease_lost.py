"""A runner whose lease is taken over stops: once a whole lease passed without a renewal
(here another runner claimed the row after it looked stale), the operation's work is
cancelled, counted in `openvle_lease_lost`, and the row is left to the new runner.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.metrics import REGISTRY
from openvle_core.operations import lease
from openvle_core.operations.kinds import operation_kind
from openvle_core.operations.repository import OperationRepository
from openvle_core.queue import InProcessQueue
from openvle_core.runtime import open_runtime
from openvle_pvesim import run_simulator
from tests.engine.kit import make_settings, sqlite_url

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

SLOW = "test.slow_until_cancelled"
started: asyncio.Event | None = None
cancelled: asyncio.Event | None = None


@operation_kind(SLOW)
async def slow(runtime: Runtime, op: Operation) -> None:
    """Runs until cancelled (a long Proxmox wait), telling the test when it starts and stops."""
    assert started is not None
    assert cancelled is not None
    started.set()
    try:
        await asyncio.Event().wait()
    finally:
        cancelled.set()


def lost_count() -> float:
    return REGISTRY.get_sample_value("openvle_lease_lost_total", {"kind": SLOW}) or 0.0


async def take_over(runtime: Runtime, op_id: str) -> None:
    """Another runner: the row looks stale (renewals failed), so its claim succeeds."""
    async with transaction(runtime.sessions) as session:
        old = utcnow() - timedelta(seconds=10 * runtime.lease_seconds)
        await session.execute(update(Operation).where(Operation.id == op_id).values(updated_at=old))
    outcome, _ = await lease.claim(runtime, op_id)
    assert outcome is lease.Claim.TAKEN


async def test_a_runner_whose_lease_was_taken_stops_its_work(tmp_path: Path) -> None:
    global started, cancelled
    started, cancelled = asyncio.Event(), asyncio.Event()
    url = sqlite_url(tmp_path)
    await upgrade_to_head(url)
    async with run_simulator(version="9.1", time_scale=0.01) as sim:
        settings = make_settings(sim, url)
        async with open_runtime(settings, in_process=True, lease_seconds=0.6) as runtime:
            before = lost_count()
            async with transaction(runtime.sessions) as session:
                op = await OperationRepository(session).create(SLOW, "test", "lease")
            await runtime.queue.enqueue(op.id)
            await asyncio.wait_for(started.wait(), 30)
            await take_over(runtime, op.id)
            await asyncio.wait_for(cancelled.wait(), 30)
            assert isinstance(runtime.queue, InProcessQueue)
            await asyncio.wait_for(runtime.queue.join(), 30)
            async with transaction(runtime.sessions) as session:
                row = await OperationRepository(session).require(op.id)
    assert lost_count() - before == 1
    assert (row.state, row.attempts, row.error_type) == ("running", 2, None)  # the new runner's
