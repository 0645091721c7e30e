"""Helpers for event tests: make an event, run its deploy/archive, read the cluster."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from openvle_core.db.models import Event, IpAllocation, Operation, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.events import service
from openvle_core.guests.smbios import parse_smbios1
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator
from tests.vms.kit import (
    POOL,
    MakeRuntime,
    add_template,
    arq_worker,
    make_settings,
    open_fast_runtime,
    wait_op,
)

# (vmid, name, node) of the demo seed's templates on shared storage (ceph)
DEBIAN = (9000, "debian-12-template", "pve1")
UBUNTU = (9001, "ubuntu-2404-template", "pve3")


async def make_event(
    runtime: Runtime,
    slug: str,
    participants: int,
    templates: tuple[tuple[int, str, str], ...] = (DEBIAN, UBUNTU),
    **times: datetime,
) -> str:
    """A scheduled event over the given seeded templates; returns its id."""
    ids = [await template_id(runtime, *t) for t in templates]
    start = times.get("starts_at", datetime.now(UTC) + timedelta(days=1))
    end = times.get("ends_at", start + timedelta(hours=8))
    async with transaction(runtime.sessions) as session:
        view = await service.create_event(
            session,
            slug=slug,
            name=f"Event {slug}",
            starts_at=start,
            ends_at=end,
            participants=participants,
            template_ids=ids,
            now=min(datetime.now(UTC), start),  # events of the past: as made before they began
        )
        return view.event.id


async def template_id(runtime: Runtime, vmid: int, name: str, node: str) -> str:
    """The template row of a seeded PVE template, made on first use."""
    async with transaction(runtime.sessions) as session:
        found = await session.scalar(select(Template.id).where(Template.vmid == vmid))
    return found or await add_template(runtime, vmid, name, node)


async def request(runtime: Runtime, action: str, event_id: str) -> Operation:
    """Stage deploy or archive, commit, enqueue (as the API does)."""
    async with transaction(runtime.sessions) as session:
        if action == "deploy":
            op = await service.request_deploy(session, runtime.settings, event_id)
        else:
            op = await service.request_archive(session, event_id)
    await runtime.queue.enqueue(op.id)
    return op


async def run(runtime: Runtime, action: str, event_id: str, timeout: float = 60.0) -> Operation:  # noqa: ASYNC109
    """Request and wait for the operation to finish."""
    op = await request(runtime, action, event_id)
    return await wait_op(runtime, op.id, timeout)


async def event_vms(runtime: Runtime, event_id: str) -> list[Vm]:
    async with transaction(runtime.sessions) as session:
        rows = await session.scalars(select(Vm).where(Vm.event_id == event_id).order_by(Vm.name))
        return list(rows.all())


async def event_row(runtime: Runtime, event_id: str) -> Event:
    async with transaction(runtime.sessions) as session:
        event = await session.get(Event, event_id)
        assert event is not None
        return event


async def allocations(runtime: Runtime) -> list[IpAllocation]:
    async with transaction(runtime.sessions) as session:
        return list((await session.scalars(select(IpAllocation))).all())


def pool_guests(sim: Simulator) -> dict[int, Any]:
    """vmid -> simulated VM of our pool, templates left out."""
    cluster = sim.cluster
    return {
        v: cluster.vms[v]
        for v in cluster.pools[POOL].vms
        if v in cluster.vms and not cluster.vms[v].is_template
    }


def smbios(guest: Any) -> dict[str, str]:
    return parse_smbios1(str(guest.config.get("smbios1", "")))


def tasks_of(sim: Simulator, kind: str) -> int:
    return sum(1 for t in sim.cluster.tasks.tasks.values() if t.type == kind)


def runtime_factory(sim: Simulator, database_url: str, redis_url: str | None) -> MakeRuntime:
    """`async with factory(worker={...}) as runtime:` on the given database and queue."""

    @contextlib.asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[Runtime]:
        settings = make_settings(sim, database_url, redis_url=redis_url, **options)
        opened = open_fast_runtime(settings, in_process=redis_url is None)
        async with opened as runtime:
            if redis_url is None:
                yield runtime
            else:
                async with arq_worker(settings):
                    yield runtime

    return factory
