"""Crash safety: the arq worker process is SIGKILLed in the middle of a clone and of a
delete, a new worker process takes over, and each operation completes with no orphan VM
on the simulator and no duplicate row. Real Redis, a real subprocess, the simulator in
this test process (its tasks are held with the task gate while the worker is killed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation, Vm, VmidReservation
from openvle_core.db.session import transaction
from openvle_core.queue import ArqQueue
from openvle_core.runtime import Runtime, open_runtime
from openvle_core.vms.service import request_clone, request_delete
from openvle_pvesim import Simulator, run_simulator
from tests.engine.kit import (
    CI_TOKEN,
    SHARED_TEMPLATE,
    add_template,
    all_rows,
    make_settings,
    pool_vms,
    sqlite_url,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
WORKER = (
    "import asyncio, sys\n"
    "from openvle_core.settings import load_settings\n"
    "from openvle_worker.worker import run_worker\n"
    "asyncio.run(run_worker(load_settings(env_file=None), lease_seconds=float(sys.argv[1])))\n"
)
LEASE = 1.0


def worker_env(sim: Simulator, database_url: str, redis_url: str) -> dict[str, str]:
    user, _, token = CI_TOKEN.partition("!")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PVE_", "WORKER_"))}
    env.update(
        PVE_HOSTNAME=sim.hostname,
        PVE_USER=user,
        PVE_TOKEN_NAME=token,
        PVE_TOKEN_VALUE=sim.tokens[CI_TOKEN],
        PVE_VERIFY_SSL=str(sim.ca_file),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WORKER_RETRY_BACKOFF_SCALE="0.01",
        WORKER_AGENT_IP_TIMEOUT="2",
        WORKER_PVE_PERIODIC_INTERVAL="3600",
    )
    return env


class Workers:
    """Start worker processes; SIGKILL one; terminate all at the end."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.cwd / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(LEASE)],
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def until(check: Callable[[], Any], timeout: float = 120.0) -> Any:  # noqa: ASYNC109
    """Await `check()` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


async def op_row(runtime: Runtime, op_id: str) -> Operation:
    async with transaction(runtime.sessions) as session:
        op = await session.get(Operation, op_id)
        assert op is not None
        return op


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(version="9.1", time_scale=0.01) as simulator:
        yield simulator


@pytest.fixture(params=["sqlite", "mariadb"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, mariadb_database_factory: Any
) -> str:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = str(await mariadb_database_factory("crash"))
    await upgrade_to_head(url)
    return url


async def test_worker_killed_mid_clone_and_mid_delete(
    sim: Simulator, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sim, database_url, redis_url=redis_url)
    workers = Workers(worker_env(sim, database_url, redis_url), tmp_path)
    queue = await ArqQueue.connect(redis_url)
    try:
        async with open_runtime(settings, in_process=True) as runtime:
            await scenario(runtime, sim, workers, queue)
    finally:
        sim.cluster.tasks.gate.set()
        workers.stop_all()
        await queue.close()


async def scenario(runtime: Runtime, sim: Simulator, workers: Workers, queue: ArqQueue) -> None:
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    before = dict(pool_vms(sim))
    async with transaction(runtime.sessions) as session:
        op = await request_clone(session, runtime.settings, template_id=template_id, name="crash")
    sim.cluster.tasks.gate.clear()  # the clone task will hang until the gate opens
    await queue.enqueue(op.id)
    first = workers.start()

    async def clone_started() -> bool:
        return bool(((await op_row(runtime, op.id)).result or {}).get("clone_upid"))

    await until(clone_started)
    workers.kill(first)  # in the middle of the clone task
    sim.cluster.tasks.gate.set()
    second = workers.start()
    done = await until(lambda: finished(runtime, op.id))
    assert done.state == "succeeded", done.error_message
    assert done.attempts == 2
    vms = await all_rows(runtime, Vm)
    assert len(vms) == 1
    ours = {vmid: name for vmid, name in pool_vms(sim).items() if vmid not in before}
    assert ours == {vms[0].vmid: "crash"}  # one clone, no orphan from the first run
    assert [r.vmid for r in await all_rows(runtime, VmidReservation)] == [vms[0].vmid]

    async with transaction(runtime.sessions) as session:
        delete_op = await request_delete(session, vms[0].id)
    sim.cluster.tasks.gate.clear()
    await queue.enqueue(delete_op.id)

    async def destroy_started() -> bool:
        return bool(((await op_row(runtime, delete_op.id)).result or {}).get("destroy_upid"))

    await until(destroy_started)
    workers.kill(second)  # in the middle of the destroy task
    sim.cluster.tasks.gate.set()
    workers.start()
    deleted = await until(lambda: finished(runtime, delete_op.id))
    assert deleted.state == "succeeded", deleted.error_message
    assert deleted.attempts == 2
    assert await all_rows(runtime, Vm) == []
    assert await all_rows(runtime, VmidReservation) == []
    assert pool_vms(sim) == before


async def finished(runtime: Runtime, op_id: str) -> Operation | None:
    op = await op_row(runtime, op_id)
    return op if op.state in {"succeeded", "failed"} else None
