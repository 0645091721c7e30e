"""The worker's registration and the embedded scheduler's recovery of a dead runner."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

from openvle_core.db.enums import OperationState
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.operations.repository import lock_key
from openvle_core.runtime import open_runtime
from openvle_core.scheduler import PeriodicJob, recover_tick, scheduler
from openvle_core.vms.service import request_clone
from openvle_pvesim import run_simulator
from openvle_worker.worker import WorkerSettings, cron_jobs, run_worker
from tests.engine.kit import SHARED_TEMPLATE, add_template, get_vm, run, sqlite_url, wait_op
from tests.engine.kit import make_settings as settings_for


def test_worker_registers_the_job_and_both_crons(tmp_path: Path) -> None:
    assert [f.name for f in WorkerSettings.functions] == ["run_operation_job"]

    class FakeSim:
        hostname, tokens, ca_file = "127.0.0.1:8006", {"openvle@pve!ci": "x"}, None

    settings = settings_for(FakeSim(), sqlite_url(tmp_path))  # type: ignore[arg-type]
    names = sorted(job.name for job in cron_jobs(settings))
    assert names == ["events_tick", "recover", "sync_tick"]


async def test_embedded_scheduler_recovers_an_operation_whose_runner_died(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    await upgrade_to_head(url)
    async with run_simulator(version="9.1", time_scale=0.01) as sim:
        settings = settings_for(sim, url)
        async with open_runtime(settings, in_process=True, lease_seconds=0.3) as runtime:
            template_id = await add_template(runtime, *SHARED_TEMPLATE)
            done = await run(runtime, lambda s: request_clone(s, settings, template_id=template_id))
            assert done.state == "succeeded", done.error_message
            vm_id = str(done.target_id)
            async with transaction(runtime.sessions) as session:  # a runner that died
                op = Operation(
                    kind="vm.power",
                    target_type="vm",
                    target_id=vm_id,
                    params={"action": "start"},
                    state=OperationState.RUNNING.value,
                    lock_key=lock_key("vm", vm_id),
                    attempts=1,
                )
                session.add(op)
                await session.flush()
                op.updated_at = utcnow() - timedelta(seconds=60)
            async with scheduler(runtime, [PeriodicJob("recover", 0.1, recover_tick)]):
                finished = await wait_op(runtime, op.id, timeout=30)
            assert finished.state == "succeeded", finished.error_message
            assert finished.attempts == 2
            assert (await get_vm(runtime, vm_id)).status == "running"  # type: ignore[union-attr]


async def test_run_worker_without_redis_runs_the_embedded_loop(tmp_path: Path) -> None:
    """No REDIS_URL: in-process queue and scheduler; queued work left from before the
    start (e.g. by an API that crashed before enqueueing) is picked up."""
    url = sqlite_url(tmp_path)
    await upgrade_to_head(url)
    async with run_simulator(version="9.1", time_scale=0.01) as sim:
        settings = settings_for(sim, url)
        async with open_runtime(settings, in_process=True) as runtime:
            template_id = await add_template(runtime, *SHARED_TEMPLATE)
            async with transaction(runtime.sessions) as session:
                op = await request_clone(session, settings, template_id=template_id)
                await session.flush()
                op.updated_at = utcnow() - timedelta(seconds=60)  # never enqueued
            worker = asyncio.create_task(run_worker(settings, lease_seconds=0.5))
            try:
                finished = await wait_op(runtime, op.id, timeout=30)
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            assert finished.state == "succeeded", finished.error_message
            assert finished.attempts == 1
