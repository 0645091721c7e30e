"""What a sync costs when little changed: no writes for unchanged VMs, no validation of
unchanged guest entries (issue 16: the periodic sync within 2x one fetch)."""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Vm
from openvle_core.proxmox.models import ClusterResource
from openvle_core.proxmox.resources import ResourceEntry
from openvle_core.sync.cluster import GUEST_FIELDS, GUEST_USAGE, GuestMemo, guest_memo
from openvle_pvesim.seeds import start_now
from tests.support.collections import collections_seen
from tests.sync.kit import POOL_VMS, Harness, evidence_of

TEMPLATES = 3  # the demo templates in the pool


@contextmanager
def vm_updates(engine: AsyncEngine) -> Iterator[list[int]]:
    """Rows each UPDATE of the vms table carried (an executemany counts its parameter sets)."""
    rows: list[int] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE VMS"):
            rows.append(len(params) if many else 1)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield rows
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def known(h: Harness) -> None:
    cluster = h.sim.cluster
    await h.add_vms(
        *(
            Vm(vmid=v, name=cluster.vms[v].name, status=VmStatus.STOPPED, **evidence_of(h.sim, v))
            for v in range(10000, 10000 + POOL_VMS)
        )
    )


def move(h: Harness, vmid: int) -> str:
    """Migrate guest `vmid` behind OpenVLE's back (live in cluster resources); its node."""
    guest = h.sim.cluster.vms[vmid]
    guest.node = "pve1" if guest.node != "pve1" else "pve2"
    return guest.node


async def test_unchanged_vms_cause_no_row_writes(harness: Harness, db_engine: AsyncEngine) -> None:
    await known(harness)
    assert (await harness.sync()).ok
    with vm_updates(db_engine) as rows:
        again = await harness.sync()
    assert again.ok
    assert (again.vms_updated, rows) == (0, [])
    move(harness, 10001)
    with vm_updates(db_engine) as rows:
        moved = await harness.sync()
    assert moved.vms_updated == 1
    assert rows == [1]  # the one row that changed, nothing for the others


async def test_the_collector_does_not_run_during_a_sync(harness: Harness) -> None:
    """A sync's rows and refs are short-lived and acyclic: the cyclic collector is paused
    while it runs (`collector.paused`) and resumes after."""
    await known(harness)
    assert (await harness.sync()).ok
    with collections_seen() as runs:
        move(harness, 10001)
        result = await harness.sync()
    assert result.ok
    assert result.vms_updated == 1
    assert runs == []
    assert gc.isenabled()


async def test_changed_syncs_of_any_size_add_nothing_to_the_statement_cache(
    harness: Harness, db_engine: AsyncEngine
) -> None:
    """The bulk UPDATE's shape follows its rows (a CASE branch each): cached, every new
    count of changed rows would keep one more compiled statement (about 1 MB at 150
    rows) for the life of the worker."""
    await known(harness)
    assert (await harness.sync()).ok
    cache = db_engine.sync_engine._compiled_cache
    assert cache is not None
    sizes = []
    for count in (1, 2, 3, 5, 7):  # one row and many: each kind of statement seen once
        for vmid in range(10000, 10000 + count):
            move(harness, vmid)
        assert (await harness.sync()).vms_updated == count
        sizes.append(len(cache))
    assert sizes[1:] == [sizes[1]] * 4, sizes


async def test_only_changed_guest_entries_are_validated(harness: Harness) -> None:
    await known(harness)
    memo = guest_memo(harness.proxmox)
    assert (await harness.sync()).ok
    assert memo.parsed == POOL_VMS + TEMPLATES
    harness.sim.cluster.tick()  # the running guests' usage counters move: nothing we keep
    assert (await harness.sync()).ok
    assert memo.parsed == 0
    new = move(harness, 10002)
    result = await harness.sync()
    assert result.vms_updated == 1
    assert memo.parsed == 1
    stored = next(d for d in await harness.snapshot.list(type="qemu") if d["vmid"] == 10002)
    assert stored["node"] == new
    assert not {"cpu", "mem", "disk", "uptime"} & stored.keys()


def test_the_memo_keeps_compact_guests_and_revalidates_only_what_changed() -> None:
    assert set(GUEST_FIELDS) <= set(ClusterResource.model_fields)
    assert not set(GUEST_FIELDS) & GUEST_USAGE
    entry = {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "pool": "P"}
    entry |= {"status": "running", "template": 0, "maxcpu": 2, "maxmem": 2 << 30, "cpu": 0.5}
    memo = GuestMemo()
    [(guest, document)] = memo.take([ResourceEntry(**entry)])
    assert (memo.parsed, guest.template, guest.maxcpu) == (1, False, 2.0)
    assert document == {k: v for k, v in entry.items() if k != "cpu"} | {"template": False}
    memo.take(
        [ResourceEntry(**entry | {"cpu": 0.9})]
    )  # usage moved; 0 and 2 were coerced to equal values
    assert memo.parsed == 0
    [(renamed, _document)] = memo.take([ResourceEntry(**entry | {"name": "lab-1"})])
    assert (memo.parsed, renamed.name) == (1, "lab-1")
    assert memo.entries["qemu/100"][0] is renamed
    gc.collect()  # a document of plain values is out of the collector's sight
    assert not gc.is_tracked(memo.entries["qemu/100"][1])


class InFlight:
    """Wraps the simulator's request handler: counts the per-VM GETs in flight at once
    (each held for a moment, so that concurrent ones overlap) and their order."""

    PER_VM = re.compile(r"/qemu/\d+/(config|agent/network-get-interfaces|status/current)$")

    def __init__(self, h: Harness) -> None:
        self.handle = h.sim.app.handle
        self.now = self.most = 0
        self.order: list[str] = []  # "config 10003", "agent 10003", ...
        h.sim.app.handle = self  # type: ignore[method-assign]

    async def __call__(self, method: str, target: str, headers: Any, body: bytes) -> Any:
        found = self.PER_VM.search(target.partition("?")[0])
        if method != "GET" or found is None:
            return await self.handle(method, target, headers, body)
        vmid = target.partition("/qemu/")[2].partition("/")[0]
        self.order.append(f"{found.group(1).partition('/')[0]} {vmid}")
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(5):  # let the other requests of the sync arrive meanwhile
                await asyncio.sleep(0)
            await asyncio.sleep(0.002)
            return await self.handle(method, target, headers, body)
        finally:
            self.now -= 1


async def test_per_vm_reads_are_concurrent_within_the_bound(harness: Harness) -> None:
    cluster = harness.sim.cluster
    await known(harness)  # all stopped: the running ones change, and lack an IPv4
    for vmid in range(10000, 10000 + POOL_VMS):
        start_now(cluster, cluster.vms[vmid])  # every one running now
    cluster.tick()
    settings = harness.settings
    harness.settings = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"sync_agent_concurrency": 3})}
    )
    seen = InFlight(harness)
    result = await harness.sync()
    assert result.ok, result.error
    assert result.identity_checks >= POOL_VMS
    assert result.ip_found == POOL_VMS
    clones = {str(vmid) for vmid in range(10000, 10000 + POOL_VMS)}  # not the templates
    configs = [
        i
        for i, what in enumerate(seen.order)
        if what.split()[1] in clones and what.startswith("config")
    ]
    agents = [i for i, what in enumerate(seen.order) if what.startswith("agent")]
    assert len(agents) == POOL_VMS
    assert 2 <= seen.most <= 3  # concurrent, never more than the bound
    # each VM's IPv4 is asked right after its own config read, not after all of them
    assert agents[0] < configs[-1]
    for vmid in range(10000, 10000 + POOL_VMS):
        assert seen.order.index(f"config {vmid}") < seen.order.index(f"agent {vmid}")
