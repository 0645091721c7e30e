"""`openvle worker` without `REDIS_URL` (the embedded loop) as a real process: SIGTERM
and SIGINT stop it the way they stop the arq worker (the scheduler first, then
WORKER_STOP_TIMEOUT for what runs, then the rest hands its operations back), and it
exits 0 instead of dying by the signal. SQLite, the simulator in this test process."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.handlers import run_operation
from openvle_core.runtime import DEFAULT_LEASE_SECONDS, Runtime, open_runtime
from openvle_core.vms.service import request_clone
from openvle_pvesim import Simulator
from tests.support.services import free_port
from tests.vms.kit import SHARED_TEMPLATE, add_template, make_settings, sqlite_url
from tests.worker.test_crash import op_row, until, worker_env
from tests.worker.test_process import Worker

pytestmark = [pytest.mark.slow]


class Embedded(Worker):
    """One `openvle worker` process without REDIS_URL (`tests.worker.test_process.Worker`
    with the probe port on), its output in a log file."""

    def __init__(self, sim: Simulator, database: str, cwd: Path, **extra: str) -> None:
        self.port = free_port()
        env = worker_env(sim, database, "")
        del env["REDIS_URL"]
        env.update(WORKER_METRICS_PORT=str(self.port), **extra)
        super().__init__(env, cwd, "worker")

    async def live(self) -> None:
        """Wait until its probe port answers (start-up done)."""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as client:

            async def answered() -> bool:
                assert self.proc.poll() is None, self.output()
                try:
                    return (await client.get("/health/live")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(answered, timeout=60)


@contextlib.asynccontextmanager
async def clone_in_flight(
    sim: Simulator, tmp_path: Path, stop_timeout: str
) -> AsyncIterator[tuple[Runtime, str, Embedded]]:
    """An embedded worker that took a clone at start-up (queued for longer than a lease:
    its recovery takes it) whose Proxmox task hangs (the simulator's task gate) until
    released; yields once the clone runs, kills the worker if it is still there after."""
    database = sqlite_url(tmp_path)
    await upgrade_to_head(database)
    settings = make_settings(sim, database)
    async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
        template_id = await add_template(runtime, *SHARED_TEMPLATE)
        async with transaction(runtime.sessions) as session:
            op = await request_clone(session, settings, template_id=template_id, name="sig")
            long_ago = utcnow() - timedelta(seconds=2 * DEFAULT_LEASE_SECONDS)
            await session.execute(
                update(Operation).where(Operation.id == op.id).values(updated_at=long_ago)
            )
        sim.cluster.tasks.gate.clear()
        worker = Embedded(sim, database, tmp_path, WORKER_STOP_TIMEOUT=stop_timeout)
        try:
            await until(lambda: clone_started(runtime, op.id), timeout=60)
            yield runtime, op.id, worker
        finally:
            worker.kill()


async def clone_started(runtime: Runtime, op_id: str) -> bool:
    return bool(((await op_row(runtime, op_id)).result or {}).get("clone_upid"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_the_embedded_worker_stops_on_a_signal_with_status_0(
    sim: Simulator, tmp_path: Path, signum: signal.Signals
) -> None:
    database = sqlite_url(tmp_path)
    await upgrade_to_head(database)
    worker = Embedded(sim, database, tmp_path, WORKER_STOP_TIMEOUT="5")
    try:
        await worker.live()
        worker.proc.send_signal(signum)
        status = await worker.stopped()
    finally:
        worker.kill()
    assert status == 0, worker.output()
    assert f"worker stopping on {signum.name}: operations get 5 s to finish" in worker.output()
    assert "Traceback" not in worker.output()


async def test_the_embedded_worker_hands_back_what_does_not_finish_in_time(
    sim: Simulator, tmp_path: Path
) -> None:
    """A clone the worker took at start-up (queued for longer than a lease) hangs on its
    Proxmox task: after WORKER_STOP_TIMEOUT its run stops and hands the row back (the
    lease expired at once, so the next start resumes it), and the worker exits 0."""
    async with clone_in_flight(sim, tmp_path, "0.5") as (runtime, op_id, worker):
        worker.proc.send_signal(signal.SIGTERM)
        status = await worker.stopped()
        assert status == 0, worker.output()
        assert "handed back" in worker.output()
        row = await op_row(runtime, op_id)
        assert (row.state, row.attempts) == ("running", 1)
        assert row.updated_at <= utcnow() - timedelta(seconds=DEFAULT_LEASE_SECONDS)


async def test_the_embedded_worker_lets_running_work_finish(sim: Simulator, tmp_path: Path) -> None:
    """SIGTERM with a clone in flight and time to spare: the clone finishes in its first
    run once its Proxmox task completes, then the worker exits 0."""
    async with clone_in_flight(sim, tmp_path, "120") as (runtime, op_id, worker):
        worker.proc.send_signal(signal.SIGTERM)

        async def stopping() -> bool:
            return "worker stopping on SIGTERM" in worker.output()

        await until(stopping, timeout=60)
        sim.cluster.tasks.gate.set()
        status = await worker.stopped()
        assert status == 0, worker.output()
        row = await op_row(runtime, op_id)
        assert (row.state, row.attempts) == ("succeeded", 1), row.error_message
