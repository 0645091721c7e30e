"""What one poll of a deploy's event stream costs, per VM of the event.

The stream of an event deploy (GET /api/v1/operations/{id}/events) reads, on every poll
(0.5 s), the operation row, the event's VMs and the deploy's child operations, and sends
the VMs that changed. This builds an embedded-default database (SQLite) with an event of
BENCH_STREAM_VMS (300) VMs, each with its child operation, and times BENCH_POLLS polls
of the stream's read-and-diff step (`batch_vms` + `vm_frames`, nothing changed), against
the baseline the stream had before: reading the operation row alone.
BENCH_DATABASE_URL runs it on another (empty) database, e.g. MariaDB.
Prints one JSON line: vms, poll_ms (median), op_only_ms (median), poll_vs_op_only,
poll_ms_per_100_vms.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

VMS = int(os.environ.get("BENCH_STREAM_VMS", "300"))
POLLS = int(os.environ.get("BENCH_POLLS", "200"))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL")


async def prepare(url: str) -> tuple[Any, str]:
    """Migrate, insert the event, its VMs, the deploy and its children; (engine, op id)."""
    from openvle_core.db.migrate import upgrade_to_head
    from openvle_core.db.models import Event, Operation, Template, Vm
    from openvle_core.db.session import create_engine, session_factory, transaction

    await upgrade_to_head(url)
    engine = create_engine(url)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with transaction(session_factory(engine)) as session:
        template = Template(vmid=9000, name="debian-12", node="pve1")
        event = Event(
            slug="bench",
            name="Bench",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            participants=VMS,
        )
        session.add_all([template, event])
        await session.flush()
        parent = Operation(
            kind="event.deploy",
            target_type="event",
            target_id=event.id,
            state="running",
            progress_total=VMS,
        )
        session.add(parent)
        await session.flush()
        for i in range(VMS):
            vm = Vm(
                name=f"bench-{i:03d}",
                template_id=template.id,
                event_id=event.id,
                participant=i + 1,
                vmid=1000 + i,
                node="pve1",
                status="running",
                ipv4=f"10.20.{i // 250}.{i % 250 + 2}",
            )
            session.add(vm)
            await session.flush()
            session.add(
                Operation(
                    kind="event.vm_deploy",
                    target_type="vm",
                    target_id=vm.id,
                    parent_id=parent.id,
                    state="succeeded",
                    result={"cloned": True, "configured": True},
                )
            )
        return engine, parent.id


async def median_ms(poll: Any) -> float:
    """The median of POLLS timed calls of `poll` (after 10 warm-up calls)."""
    for _ in range(10):
        await poll()
    times = []
    for _ in range(POLLS):
        started = time.perf_counter()
        await poll()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(url: str) -> dict[str, Any]:
    from openvle_api.sse import vm_frames
    from openvle_core.db.session import session_factory
    from openvle_core.events.queries import batch_vms
    from openvle_core.operations.queries import find_operation

    engine, op_id = await prepare(url)
    sessions = session_factory(engine)
    seen: dict[str, Any] = {}

    async def op_only() -> None:
        async with sessions() as session:
            await find_operation(session, op_id)

    async def full_poll() -> None:
        async with sessions() as session:
            op = await find_operation(session, op_id)
            assert op is not None
            batch = await batch_vms(session, op)
        assert batch is not None
        vm_frames(batch, seen)

    try:
        baseline, poll = await median_ms(op_only), await median_ms(full_poll)
    finally:
        await engine.dispose()
    return {
        "vms": VMS,
        "poll_ms": round(poll, 3),
        "op_only_ms": round(baseline, 3),
        "poll_vs_op_only": round(poll / baseline, 1),
        "poll_ms_per_100_vms": round(poll / VMS * 100, 3),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = DATABASE_URL or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        print(json.dumps(asyncio.run(measure(url))))


if __name__ == "__main__":
    main()
