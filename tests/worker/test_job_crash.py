"""A job whose exception escapes `run_operation` (past the handler's own failure path):
the in-process consumer lives on, the crash is counted, and the row ends failed with
the error's type instead of staying "running" until recovery re-runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.session import transaction
from openvle_core.metrics import REGISTRY
from openvle_core.operations.kinds import operation_kind
from openvle_core.operations.repository import OperationRepository
from openvle_core.runtime import open_runtime
from openvle_pvesim import run_simulator
from tests.engine.kit import make_settings, sqlite_url, wait_op

if TYPE_CHECKING:
    from openvle_core.db.models import Operation
    from openvle_core.runtime import Runtime

UNSTORABLE = "test.unstorable_result"


@operation_kind(UNSTORABLE)
async def unstorable(runtime: Runtime, op: Operation) -> None:
    """Succeeds, but leaves a result the database cannot store: finishing the row raises."""
    op.result = {"not_json": object()}


def crashes() -> float:
    return (
        REGISTRY.get_sample_value("openvle_worker_job_crashes_total", {"transport": "inprocess"})
        or 0.0
    )


async def test_an_escaped_exception_fails_the_row_and_keeps_the_consumer(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    await upgrade_to_head(url)
    async with run_simulator(version="9.1", time_scale=0.01) as sim:
        settings = make_settings(sim, url, worker={"max_jobs": 1})
        async with open_runtime(settings, in_process=True, lease_seconds=2.0) as runtime:
            before = crashes()
            ids = []
            for n in range(2):  # one consumer: the second job runs only if it survived
                async with transaction(runtime.sessions) as session:
                    op = await OperationRepository(session).create(UNSTORABLE, "test", str(n))
                    ids.append(op.id)
                await runtime.queue.enqueue(op.id)
            rows = [await wait_op(runtime, op_id, timeout=30) for op_id in ids]
    assert [row.state for row in rows] == ["failed", "failed"]
    assert {row.error_type for row in rows} == {"StatementError"}
    assert all("crashed outside the handler" in (row.error_message or "") for row in rows)
    assert crashes() - before == 2
