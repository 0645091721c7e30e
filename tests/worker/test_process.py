"""`openvle worker` as a real process: its metrics and health port (scraped after a sync
and an event deploy, checked against every name the alerts and dashboards read) and its
SIGTERM (running operations finish within WORKER_STOP_TIMEOUT, or are handed back and
resumed by the next worker: nothing lost, nothing cloned twice; exit status 0).
Real Redis, SQLite, the simulator in this test process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Vm, VmidReservation
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.handlers import run_operation
from openvle_core.runtime import DEFAULT_LEASE_SECONDS, Runtime, open_runtime
from openvle_core.sync.service import request_sync
from openvle_core.vms.service import request_clone
from openvle_pvesim import Simulator
from tests.events import kit as events
from tests.support.monitoring import API_METRICS, exposed_names, samples, used_metric_names
from tests.support.services import free_port
from tests.vms.kit import (
    SHARED_TEMPLATE,
    add_template,
    all_rows,
    make_settings,
    pool_vms,
    sqlite_url,
    wait_op,
)
from tests.worker.test_crash import finished, op_row, until, worker_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]
OPENVLE = str(Path(sys.executable).with_name("openvle"))
TOKEN = "scrape-secret"


class Worker:
    """One `openvle worker` process, its output in a log file."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        self.log = cwd / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [OPENVLE, "worker"], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stopped(self) -> int:
        """The exit status (a hang guard of 120 s, not a timing check)."""
        return await asyncio.to_thread(self.proc.wait, 120)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
async def database(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    await upgrade_to_head(url)
    return url


async def answered(client: httpx.AsyncClient, path: str, worker: Worker) -> httpx.Response:
    """The first answer of the worker's port (it binds once start-up is done)."""

    async def get() -> httpx.Response | None:
        assert worker.proc.poll() is None, worker.output()
        try:
            return await client.get(path)
        except httpx.TransportError:
            return None

    reply: httpx.Response = await until(get, timeout=60)
    return reply


async def test_worker_serves_metrics_and_health(
    sim: Simulator, redis_url: str, database: str, tmp_path: Path
) -> None:
    port = free_port()
    env = worker_env(sim, database, redis_url)
    env.update(WORKER_METRICS_PORT=str(port), METRICS_TOKEN=TOKEN)
    worker = Worker(env, tmp_path, "worker")
    settings = make_settings(sim, database, redis_url=redis_url)
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
            open_runtime(settings, runner=run_operation, in_process=False) as runtime,
        ):
            assert (await answered(client, "/health/live", worker)).json() == {"status": "ok"}

            async def polled() -> httpx.Response | None:  # ready once its first poll got through
                reply = await client.get("/health/ready")
                return reply if reply.status_code == 200 else None

            ready = await until(polled, timeout=60)
            assert ready.json()["checks"]["database"]["ok"] is True
            assert ready.json()["checks"]["queue"]["ok"] is True
            refused = await client.get("/metrics")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401

            await sync_and_deploy(runtime)
            scrape = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert scrape.status_code == 200
    finally:
        worker.proc.send_signal(signal.SIGTERM)
        status = await worker.stopped()
        worker.kill()
    assert status == 0, worker.output()
    text = scrape.text
    missing = used_metric_names() - API_METRICS - exposed_names(text)
    assert missing == set(), "alerts or dashboards read names this worker does not export"
    synced = samples(text, "openvle_sync_runs_total")
    assert any(labels == {"outcome": "ok"} and value >= 1 for labels, value in synced), synced
    done = {
        (labels["kind"], labels["state"])
        for labels, value in samples(text, "openvle_operations_total")
        if value >= 1
    }
    assert {("sync", "succeeded"), ("event.deploy", "succeeded")} <= done, done
    assert sum(v for _, v in samples(text, "openvle_proxmox_requests_total")) > 0
    resources = samples(text, "openvle_sync_resources")
    assert resources
    assert resources[0][1] > 0
    assert "openvle_http_requests_total" not in exposed_names(text)  # the API's, not here


async def sync_and_deploy(runtime: Runtime) -> None:
    """A sync and a one-participant event deploy, both run by the worker process."""
    async with transaction(runtime.sessions) as session:
        sync = await request_sync(session)
    await runtime.queue.enqueue(sync.id)
    synced = await wait_op(runtime, sync.id)
    assert synced.state == "succeeded", synced.error_message
    event_id = await events.make_event(runtime, "scraped", 1, (events.DEBIAN,))
    deployed = await events.run(runtime, "deploy", event_id, timeout=120)
    assert deployed.state == "succeeded", deployed.error_message


async def clone_in_flight(runtime: Runtime, sim: Simulator) -> str:
    """A clone whose Proxmox task hangs (the simulator's task gate) until released."""
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    async with transaction(runtime.sessions) as session:
        op = await request_clone(session, runtime.settings, template_id=template_id, name="sig")
    sim.cluster.tasks.gate.clear()
    await runtime.queue.enqueue(op.id)

    async def clone_started() -> bool:
        return bool(((await op_row(runtime, op.id)).result or {}).get("clone_upid"))

    await until(clone_started)
    return op.id


async def test_sigterm_hands_back_what_does_not_finish_in_time(
    sim: Simulator, redis_url: str, database: str, tmp_path: Path
) -> None:
    """WORKER_STOP_TIMEOUT passes with the clone still hanging: the run stops, its lease
    is expired at once (no 30 s wait), the worker exits 0, and the next worker resumes
    the clone to one VM."""
    env = worker_env(sim, database, redis_url)
    settings = make_settings(sim, database, redis_url=redis_url)
    first = Worker({**env, "WORKER_STOP_TIMEOUT": "0.5"}, tmp_path, "first")
    second: Worker | None = None
    try:
        async with open_runtime(settings, runner=run_operation, in_process=False) as runtime:
            before = dict(pool_vms(sim))
            op_id = await clone_in_flight(runtime, sim)
            first.proc.send_signal(signal.SIGTERM)
            assert await first.stopped() == 0, first.output()
            assert "handed back" in first.output()
            row = await op_row(runtime, op_id)
            assert (row.state, row.attempts) == ("running", 1)
            lease_over = utcnow() - timedelta(seconds=DEFAULT_LEASE_SECONDS)
            assert row.updated_at <= lease_over  # any runner may take it now

            sim.cluster.tasks.gate.set()
            second = Worker(env, tmp_path, "second")
            done = await until(lambda: finished(runtime, op_id))
            assert done.state == "succeeded", done.error_message
            assert done.attempts == 2
            vms = await all_rows(runtime, Vm)
            assert [vm.name for vm in vms] == ["sig"]
            ours = {v: n for v, n in pool_vms(sim).items() if v not in before}
            assert ours == {vms[0].vmid: "sig"}  # one clone: the stopped run left none
            assert [r.vmid for r in await all_rows(runtime, VmidReservation)] == [vms[0].vmid]
    finally:
        for worker in (first, second):
            if worker is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
                await worker.stopped()
            if worker is not None:
                worker.kill()


async def test_sigterm_lets_running_work_finish_and_takes_no_new_job(
    sim: Simulator, redis_url: str, database: str, tmp_path: Path
) -> None:
    """SIGTERM with a clone in flight: no new job is taken, the clone finishes in its
    first run once its task completes, then the worker exits 0."""
    env = worker_env(sim, database, redis_url)
    settings = make_settings(sim, database, redis_url=redis_url)
    worker = Worker({**env, "WORKER_STOP_TIMEOUT": "120"}, tmp_path, "worker")
    try:
        async with open_runtime(settings, runner=run_operation, in_process=False) as runtime:
            op_id = await clone_in_flight(runtime, sim)
            worker.proc.send_signal(signal.SIGTERM)

            async def signalled() -> bool:
                return "shutdown on SIGTERM" in worker.output()

            await until(signalled)
            async with transaction(runtime.sessions) as session:
                later = await request_sync(session)
            await runtime.queue.enqueue(later.id)  # arrives while the worker drains
            sim.cluster.tasks.gate.set()
            assert await worker.stopped() == 0, worker.output()
            done = await op_row(runtime, op_id)
            assert (done.state, done.attempts) == ("succeeded", 1), done.error_message
            assert (await op_row(runtime, later.id)).state == "queued"  # left for others
            assert [vm.name for vm in await all_rows(runtime, Vm)] == ["sig"]
    finally:
        worker.kill()
