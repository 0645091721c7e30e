"""The sync on MongoDB, on PVE 8.4, and the SQL it sends: proportional to the changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Vm
from openvle_core.metrics import REGISTRY
from openvle_core.proxmox import ProxmoxClient, build_http_client
from openvle_core.snapshot import MongoSnapshotStore, SqlSnapshotStore
from openvle_pvesim import run_simulator
from tests.sync.kit import FAST_RETRY, POOL_VMS, Harness, evidence_of, settings_for


def rows_for(h: Harness) -> list[Vm]:
    cluster = h.sim.cluster
    return [
        Vm(
            vmid=v,
            name=cluster.vms[v].name,
            node=cluster.vms[v].node,
            status=VmStatus.STOPPED,
            **evidence_of(h.sim, v),
        )
        for v in range(10000, 10000 + POOL_VMS)
    ]


@pytest.fixture
def statements(db_engine: AsyncEngine) -> Iterator[list[tuple[str, int]]]:
    """(SQL verb and table, parameter sets) of every statement sent during the test."""
    seen: list[tuple[str, int]] = []

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        words = sql.split()
        table = words[2] if words[0] in {"INSERT", "DELETE"} else words[1]
        seen.append((f"{words[0]} {table.strip('`')}", len(params) if many else 1))

    event.listen(db_engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(db_engine.sync_engine, "before_cursor_execute", record)


async def test_one_change_is_one_row_updated_and_one_entry(
    harness: Harness, statements: list[tuple[str, int]]
) -> None:
    await harness.add_vms(*rows_for(harness))
    await harness.sync()
    harness.sim.cluster.vms[10001].running = True
    harness.sim.cluster.tick()
    statements.clear()
    result = await harness.sync()
    assert result.vms_updated == 1
    writes = [s for s in statements if s[0].split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    vm_updates = [n for verb, n in writes if verb == "UPDATE vms"]
    assert vm_updates == [1]  # one executemany with one row: status and ipv4 together
    entries = [n for verb, n in writes if verb == "INSERT changelog"]
    assert sum(entries) == 2  # status and ipv4 (batched by which values are NULL)
    assert {verb for verb, _ in writes} == {
        "UPDATE vms",
        "INSERT changelog",
        "UPDATE nodes",  # their cpu and memory figures move on every stats tick
        "UPDATE snapshot_resources",  # the running guests' figures, too
        "UPDATE snapshot_meta",
    }


# The snapshot store does not depend on the SQL backend: only the SQLite case is generated.
@pytest.mark.parametrize("db_engine", ["sqlite"], indirect=True, scope="session")
async def test_the_snapshot_on_mongodb_gets_only_what_changed(
    harness: Harness, mongodb_url: str, db_engine: AsyncEngine
) -> None:
    assert db_engine.dialect.name == "sqlite"
    store = MongoSnapshotStore.from_url(mongodb_url, "reconcile_test")
    harness.snapshot = store
    try:
        first = await harness.sync()
        assert first.snapshot_written == first.pool_guests + first.nodes
        harness.sim.cluster.vms[10002].node = "pve1"
        second = await harness.sync()
        assert (second.snapshot_written, second.snapshot_removed) == (1, 0)
        moved = await store.get("qemu/10002")
        assert moved is not None
        assert moved["node"] == "pve1"
    finally:
        await store.close()


async def test_the_sync_works_on_pve_84(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with run_simulator(version="8.4", vms=POOL_VMS, check_responses=True) as sim:
        settings = settings_for(sim)
        async with build_http_client(settings.proxmox) as http:
            proxmox = ProxmoxClient(http, settings.proxmox, retry=FAST_RETRY)
            h = Harness(sim, proxmox, sessions, SqlSnapshotStore(sessions), settings)
            await h.add_vms(*rows_for(h))
            result = await h.sync()
        assert sim.violations == []
    assert result.ok, result.error
    assert result.vms_updated == len([v for v in range(POOL_VMS) if v % 4 == 0])


async def test_an_empty_pool_reads_the_pool_members_instead(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """No guest carries `pool`: the pool's member list decides (here: nobody)."""
    async with run_simulator(seed="empty", check_responses=True) as sim:
        settings = settings_for(sim)
        async with build_http_client(settings.proxmox) as http:
            proxmox = ProxmoxClient(http, settings.proxmox, retry=FAST_RETRY)
            h = Harness(sim, proxmox, sessions, SqlSnapshotStore(sessions), settings)
            result = await h.sync()
    assert result.ok, result.error
    assert (result.pool_guests, result.nodes) == (0, 3)


async def test_one_cluster_resources_call_and_one_config_read_per_changed_vm(
    harness: Harness,
) -> None:
    """The changed VM's guest is confirmed as ours (its config) before its row changes;
    the unchanged ones cost nothing (the first sync confirmed them all)."""
    await harness.add_vms(*rows_for(harness))
    first = await harness.sync()  # asks the agents of the running VMs for IPv4, too
    assert first.identity_checks == POOL_VMS + 3  # and the three templates it imports
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request.url.path.removeprefix("/api2/json"))

    assert harness.http is not None
    harness.http.event_hooks["request"].append(record)
    harness.sim.cluster.vms[10001].node = "pve3"
    result = await harness.sync()
    assert result.vms_updated == 1
    assert sent == ["/cluster/resources", "/nodes/pve3/qemu/10001/config"]


async def test_runs_and_changes_are_counted_in_the_metrics(harness: Harness) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    ok, failed = (
        sample("openvle_sync_runs_total", outcome="ok"),
        sample("openvle_sync_runs_total", outcome="failed"),
    )
    changes = sample("openvle_sync_changes_total")
    result = await harness.sync()
    harness.sim.faults.add("status", "/cluster/resources", status=502, n=3)
    await harness.sync()
    assert sample("openvle_sync_runs_total", outcome="ok") == ok + 1
    assert sample("openvle_sync_runs_total", outcome="failed") == failed + 1
    assert sample("openvle_sync_changes_total") == changes + result.changes
    assert sample("openvle_sync_resources") == result.resources
