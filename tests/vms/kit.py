"""Helpers for engine tests: settings for a simulator, a runtime, submit-and-wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import OperationState
from openvle_core.db.models import Node, Operation, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.guests.identity import Evidence, Marks
from openvle_core.handlers import run_operation
from openvle_core.proxmox import PollSchedule, RetryPolicy
from openvle_core.runtime import Runtime, open_runtime
from openvle_core.settings import (
    ProxmoxSettings,
    Settings,
    load_settings,
)
from openvle_core.vms.service import request_clone, request_power
from openvle_pvesim import Simulator

CI_TOKEN = "openvle@pve!ci"
POOL = "OpenVLE-VMs"
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, total_time=10.0)
FAST_POLL = PollSchedule(first=0.005, factor=1.5, cap=0.05)
TIME_SCALE = 0.01
# (vmid, name, node, storage) of the demo seed's templates
SHARED_TEMPLATE = (9000, "debian-12-template", "pve1")
LOCAL_TEMPLATE = (9002, "kali-2025-template", "pve2")


def make_settings(
    sim: Simulator,
    database_url: str,
    *,
    redis_url: str | None = None,
    cloudinit: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
    vms: dict[str, Any] | None = None,
    proxmox: dict[str, Any] | None = None,
) -> Settings:
    """Settings for the simulator's CI token, a database, fast retries and timeouts."""
    worker_values = {
        "retry_backoff_scale": 0.001,
        "agent_ip_timeout": 10.0,
        "agent_ip_first_poll": 0.2,  # the default 20 s x TIME_SCALE
        "shutdown_timeout": 30.0,
        **(worker or {}),
    }
    return load_settings(
        env_file=None,
        proxmox={
            **ProxmoxSettings.values_for(
                sim.hostname, CI_TOKEN, sim.tokens[CI_TOKEN], sim.ca_file or False
            ),
            "vms_pool": POOL,
            **(proxmox or {}),
        },
        vms=vms or {},
        cloudinit=_aliased(cloudinit or {}),
        database={"url": SecretStr(database_url)},
        redis={"url": SecretStr(redis_url) if redis_url else None},
        worker=worker_values,
    )


def _aliased(values: dict[str, Any]) -> dict[str, Any]:
    """CloudInitSettings reads `enabled` only under its alias PVE_CI_ENABLED."""
    out = dict(values)
    if "enabled" in out:
        out["PVE_CI_ENABLED"] = out.pop("enabled")
    return out


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'openvle.sqlite3'}"


async def add_template(runtime: Runtime, vmid: int, name: str, node: str) -> str:
    """A template row for a seeded PVE template, with its evidence (as the sync imports it)."""
    marks = Marks.of(await runtime.proxmox.vm_config(node, vmid))
    evidence = Evidence.of(marks).columns(serial=False)
    async with transaction(runtime.sessions) as session:
        template = Template(vmid=vmid, name=name, node=node, cores=2, memory_mb=2048, **evidence)
        session.add(template)
        await session.flush()
        return template.id


async def add_nodes(runtime: Runtime, sim: Simulator) -> None:
    """The simulator's nodes as online node rows (the sync would write them)."""
    async with transaction(runtime.sessions) as session:
        session.add_all(Node(name=name, status="online") for name in sim.cluster.nodes)


Request = Callable[[AsyncSession], Awaitable[Operation]]


async def submit(runtime: Runtime, request: Request) -> Operation:
    """Run a request service in a transaction, commit, then enqueue (as the API does)."""
    async with transaction(runtime.sessions) as session:
        op = await request(session)
    await runtime.queue.enqueue(op.id)
    return op


async def wait_op(runtime: Runtime, op_id: str, timeout: float = 120.0) -> Operation:  # noqa: ASYNC109
    """Poll the row until the operation finished."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with transaction(runtime.sessions) as session:
            op = await session.get(Operation, op_id)
            assert op is not None
            if op.state in {OperationState.SUCCEEDED.value, OperationState.FAILED.value}:
                return op
        if loop.time() > deadline:
            raise AssertionError(f"operation {op_id} still {op.state} after {timeout}s")
        await asyncio.sleep(0.02)


async def run(runtime: Runtime, request: Request, timeout: float = 120.0) -> Operation:  # noqa: ASYNC109
    """Submit and wait."""
    op = await submit(runtime, request)
    return await wait_op(runtime, op.id, timeout)


async def get_vm(runtime: Runtime, vm_id: str) -> Vm | None:
    async with transaction(runtime.sessions) as session:
        return await session.get(Vm, vm_id)


async def all_rows(runtime: Runtime, model: Any) -> list[Any]:
    async with transaction(runtime.sessions) as session:
        return list((await session.scalars(select(model))).all())


def pool_vms(sim: Simulator) -> dict[int, str]:
    """vmid -> name of the simulator's VMs in our pool."""
    cluster = sim.cluster
    return {v: cluster.vms[v].name for v in cluster.pools[POOL].vms if v in cluster.vms}


LEASE = 2.0


def open_fast_runtime(
    settings: Settings, *, in_process: bool = True
) -> contextlib.AbstractAsyncContextManager[Runtime]:
    """`open_runtime` with the tests' lease, task polls and retries (fast, bounded)."""
    return open_runtime(
        settings,
        runner=run_operation,
        in_process=in_process,
        lease_seconds=LEASE,
        poll=FAST_POLL,
        retry=FAST_RETRY,
    )


@contextlib.asynccontextmanager
async def arq_worker(settings: Settings) -> AsyncIterator[None]:
    """An arq worker in this process, consuming the test's Redis queue."""
    from arq.worker import create_worker

    from openvle_core.redisconn import arq_settings
    from openvle_worker.worker import WorkerSettings, shutdown, startup, worker_pool

    assert settings.redis.url is not None
    redis = arq_settings(settings.redis)
    worker = create_worker(
        {"functions": WorkerSettings.functions, "on_startup": startup, "on_shutdown": shutdown},
        redis_settings=redis,
        redis_pool=await worker_pool(redis),  # closed with aclose (no deprecation warning)
        ctx={"settings": settings, "lease_seconds": LEASE},
        handle_signals=False,
        poll_delay=0.05,
        max_jobs=10,
    )
    task = asyncio.create_task(worker.main())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(asyncio.CancelledError):  # close() gathers cancelled jobs
            await worker.close()


MakeRuntime = Callable[..., contextlib.AbstractAsyncContextManager[Runtime]]


async def clone(runtime: Runtime, *, start: bool = False) -> Vm:
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    op = await run(
        runtime,
        lambda s: request_clone(s, runtime.settings, template_id=template_id, start=start),
    )
    assert op.state == "succeeded", op.error_message
    vm = await get_vm(runtime, str(op.target_id))
    assert vm is not None
    return vm


async def power(runtime: Runtime, vm: Vm, action: str) -> str:
    op = await run(runtime, lambda s: request_power(s, vm.id, action))
    return f"{op.state}: {op.error_type}: {op.error_message}" if op.state == "failed" else op.state
