"""`sync_cluster` against the simulator, on SQLite and MariaDB."""

from __future__ import annotations

import base64

from sqlalchemy import select

from openvle_core.changelog.repository import ChangelogRepository
from openvle_core.db.enums import ChangeSource, TemplateStatus, VmStatus
from openvle_core.db.models import ChangelogEntry, Node, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.metrics import REGISTRY
from openvle_core.operations.repository import OperationRepository
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository
from openvle_pvesim.cluster import VM
from tests.sync.kit import POOL, POOL_VMS, Harness, evidence_of

RUNNING = [v for v in range(10000, 10000 + POOL_VMS) if (v - 10000) % 4 == 0]


async def known_vms(h: Harness, status: str = VmStatus.STOPPED) -> dict[int, Vm]:
    """A DB row for every pool clone of the simulator, all stopped with no node yet."""
    cluster = h.sim.cluster
    rows = [
        Vm(vmid=v, name=cluster.vms[v].name, status=status, node=None, **evidence_of(h.sim, v))
        for v in range(10000, 10000 + POOL_VMS)
    ]
    await h.add_vms(*rows)
    return {vm.vmid: vm for vm in rows if vm.vmid is not None}


async def row(h: Harness, vm_id: str) -> Vm:
    async with h.sessions() as session:
        return await VmRepository(session).require(vm_id)


async def log_of(h: Harness, entity_id: str) -> list[tuple[str, str | None, str | None]]:
    async with h.sessions() as session:
        page = await ChangelogRepository(session).list(entity_id=entity_id, limit=100)
        assert all(e.source == ChangeSource.SYNC for e in page.items)
        return [(e.field, e.old, e.new) for e in page.items]


async def test_first_sync_takes_status_node_and_ipv4_from_the_pool(harness: Harness) -> None:
    vms = await known_vms(harness)
    result = await harness.sync()
    assert result.ok, result.error
    assert result.pool_guests == POOL_VMS + 3  # the clones and the three templates
    assert result.vms_updated == POOL_VMS
    running = await row(harness, vms[RUNNING[0]].id)
    assert running.status == VmStatus.RUNNING
    assert running.node == harness.sim.cluster.vms[RUNNING[0]].node
    assert running.ipv4 is not None
    assert running.ipv4.startswith("10.20.")
    assert result.ip_found == len(RUNNING)
    stopped = await row(harness, vms[10001].id)
    assert (stopped.status, stopped.ipv4) == (VmStatus.STOPPED, None)
    entries = await log_of(harness, vms[RUNNING[0]].id)
    assert ("status", "stopped", "running") in entries
    assert ("ipv4", None, running.ipv4) in entries
    assert ("node", None, running.node) in entries


async def test_nodes_are_stored_with_status_and_figures(harness: Harness) -> None:
    result = await harness.sync()
    assert result.nodes == 3
    async with harness.sessions() as session:
        nodes = {n.name: n for n in (await session.scalars(select(Node))).all()}
    assert set(nodes) == {"pve1", "pve2", "pve3"}
    assert all(
        n.status == "online" and n.maxcpu > 0 and n.maxmem > n.mem > 0 for n in nodes.values()
    )
    assert nodes["pve2"].cpu > nodes["pve1"].cpu  # the demo seed loads pve2 most


async def test_snapshot_holds_only_the_pool_and_the_nodes(harness: Harness) -> None:
    await harness.sync()
    stored = await harness.snapshot.list()
    ids = {r["id"] for r in stored}
    assert "qemu/10000" in ids
    assert "node/pve1" in ids
    assert not {"qemu/200", "qemu/201", "qemu/202"} & ids  # the Other-Team pool
    assert {r.get("pool") for r in stored if r["type"] == "qemu"} == {POOL}
    del harness.sim.cluster.vms[10003]
    harness.sim.cluster.set_pool(10003, None)
    harness.sim.cluster.tick()
    result = await harness.sync()
    assert result.snapshot_removed == 1
    assert await harness.snapshot.get("qemu/10003") is None


async def test_a_second_sync_without_changes_writes_nothing(harness: Harness) -> None:
    await known_vms(harness)
    await harness.sync()
    again = await harness.sync()
    assert again.ok
    assert (again.vms_updated, again.changes, again.ip_lookups) == (0, 0, 0)


async def test_status_changes_are_logged_with_old_and_new(harness: Harness) -> None:
    vms = await known_vms(harness)
    await harness.sync()
    cluster = harness.sim.cluster
    cluster.vms[RUNNING[0]].running = False
    cluster.vms[10001].running = True
    cluster.tick()
    result = await harness.sync()
    assert result.vms_updated == 2
    assert (await row(harness, vms[RUNNING[0]].id)).status == VmStatus.STOPPED
    assert (await row(harness, vms[10001].id)).status == VmStatus.RUNNING
    assert ("status", "running", "stopped") in await log_of(harness, vms[RUNNING[0]].id)


async def test_a_migration_moves_the_vm_to_its_new_node(harness: Harness) -> None:
    vms = await known_vms(harness)
    await harness.sync()
    guest = harness.sim.cluster.vms[10002]
    old, new = guest.node, "pve1" if guest.node != "pve1" else "pve2"
    guest.node = new
    result = await harness.sync()  # the node is live in cluster resources, no tick needed
    assert result.vms_updated == 1
    assert (await row(harness, vms[10002].id)).node == new
    assert ("node", old, new) in await log_of(harness, vms[10002].id)


async def test_a_vm_deleted_behind_our_back_becomes_missing(harness: Harness) -> None:
    vms = await known_vms(harness)
    await harness.sync()
    del harness.sim.cluster.vms[10005]
    harness.sim.cluster.set_pool(10005, None)
    result = await harness.sync()
    assert result.missing == 1
    kept = await row(harness, vms[10005].id)
    assert (kept.status, kept.vmid) == (VmStatus.MISSING, 10005)  # kept, not deleted
    assert ("status", "stopped", "missing") in await log_of(harness, vms[10005].id)
    assert (await harness.sync()).missing == 0  # logged once, not on every sync


async def test_a_vm_moved_out_of_the_pool_is_missing_too(harness: Harness) -> None:
    vms = await known_vms(harness)
    harness.sim.cluster.set_pool(10006, "Other-Team")
    result = await harness.sync()
    assert result.missing == 1
    assert (await row(harness, vms[10006].id)).status == VmStatus.MISSING


async def test_an_unknown_pool_vm_is_reported_as_unmanaged(harness: Harness) -> None:
    vms = await known_vms(harness)
    async with transaction(harness.sessions) as session:
        await VmRepository(session).delete(vms[10007].id)
    result = await harness.sync()
    assert result.unmanaged_vmids == [10007]
    assert (result.unmanaged, result.adopted) == (1, 0)
    async with harness.sessions() as session:
        assert await VmRepository(session).get_by_vmid(10007) is None


async def test_a_pool_vm_whose_smbios_serial_is_ours_is_adopted(harness: Harness) -> None:
    vms = await known_vms(harness)
    lost = vms[10004]
    async with transaction(harness.sessions) as session:  # restored under a new vmid
        await VmRepository(session).bulk_update([{"id": lost.id, "vmid": None}])
    serial = base64.b64encode(lost.id.encode()).decode()
    guest = harness.sim.cluster.vms[10004]
    guest.config["smbios1"] += f",serial={serial},base64=1"
    result = await harness.sync()
    assert result.adopted == 1
    assert result.unmanaged_vmids == []
    adopted = await row(harness, lost.id)
    assert (adopted.vmid, adopted.status) == (10004, VmStatus.RUNNING)
    assert ("vmid", None, "10004") in await log_of(harness, lost.id)


async def test_a_template_made_outside_openvle_is_imported(harness: Harness) -> None:
    await known_vms(harness)
    result = await harness.sync()
    assert result.templates_imported == 3  # the demo seed's templates
    cluster = harness.sim.cluster
    config = dict(cluster.vms[9001].config, name="rocky-9-template")
    cluster.vms[9100] = VM(9100, "pve2", config)
    cluster.set_pool(9100, POOL)
    cluster.tick()
    result = await harness.sync()
    assert result.templates_imported == 1
    async with harness.sessions() as session:
        imported = await TemplateRepository(session).get_by_vmid(9100)
    assert imported is not None
    assert (imported.name, imported.node, imported.status) == (
        "rocky-9-template",
        "pve2",
        TemplateStatus.AVAILABLE,
    )
    assert (imported.cores, imported.memory_mb) == (2, 4096)


async def test_template_changes_and_loss_are_synced(harness: Harness) -> None:
    await harness.sync()
    cluster = harness.sim.cluster
    cluster.vms[9000].config["name"] = "debian-12-v2"
    cluster.tick()
    del cluster.vms[9002]
    cluster.set_pool(9002, None)
    result = await harness.sync()
    assert result.templates_updated == 2
    async with harness.sessions() as session:
        repo = TemplateRepository(session)
        renamed, gone = await repo.get_by_vmid(9000), await repo.get_by_vmid(9002)
    assert renamed is not None
    assert renamed.name == "debian-12-v2"
    assert gone is not None
    assert gone.status == TemplateStatus.MISSING


async def test_entries_are_one_per_field_in_bulk(harness: Harness) -> None:
    await known_vms(harness)
    result = await harness.sync()
    async with harness.sessions() as session:
        count = len((await session.scalars(select(ChangelogEntry.id))).all())
        templates = (await session.scalars(select(Template))).all()
    assert count == result.changes
    assert len(templates) == 3


async def test_a_template_the_engine_is_making_is_left_to_it(harness: Harness) -> None:
    await harness.sync()
    cluster = harness.sim.cluster
    cluster.vms[9100] = VM(9100, "pve2", dict(cluster.vms[9001].config, name="in-progress"))
    cluster.set_pool(9100, POOL)
    cluster.tick()
    async with transaction(harness.sessions) as session:
        await OperationRepository(session).create("template.create", "vmid", "9100")
    result = await harness.sync()
    assert result.templates_imported == 0


async def test_a_node_going_offline_is_logged(harness: Harness) -> None:
    await harness.sync()
    harness.sim.cluster.nodes["pve3"].online = False
    await harness.sync()
    async with harness.sessions() as session:
        node = await session.get(Node, "pve3")
    assert node is not None
    assert node.status == "offline"
    assert ("status", "online", "offline") in await log_of(harness, "pve3")


async def test_the_snapshot_keeps_state_not_usage_counters(harness: Harness) -> None:
    await harness.sync()
    harness.sim.cluster.tick()  # every running guest's cpu, mem and uptime move
    result = await harness.sync()
    assert result.snapshot_written <= result.nodes  # only nodes, whose figures are kept
    guest = await harness.snapshot.get(f"qemu/{RUNNING[0]}")
    assert guest is not None
    assert guest["status"] == "running"
    assert guest["maxmem"] > 0
    assert "cpu" not in guest
    assert "uptime" not in guest


async def test_two_running_vms_with_one_ipv4_are_flagged(harness: Harness) -> None:
    vms = await known_vms(harness)
    cluster = harness.sim.cluster
    first, second = RUNNING[0], RUNNING[1]
    cluster.vms[second].dhcp_ip = cluster.vms[first].dhcp_ip  # a DHCP server gone wrong
    result = await harness.sync()
    assert result.ok, result.error
    assert result.ipv4_duplicates == 2
    assert REGISTRY.get_sample_value("openvle_sync_ipv4_duplicates") == 2
    shared = [await row(harness, vms[v].id) for v in (first, second)]
    assert shared[0].ipv4 == shared[1].ipv4 is not None
    assert all(vm.ipv4_duplicate for vm in shared)
    assert not (await row(harness, vms[10001].id)).ipv4_duplicate
    assert ("ipv4_duplicate", "False", "True") in await log_of(harness, vms[second].id)
    cluster.vms[second].running = False  # stopped: it no longer holds the address
    cluster.tick()
    result = await harness.sync()
    assert result.ipv4_duplicates == 0
    assert REGISTRY.get_sample_value("openvle_sync_ipv4_duplicates") == 0
    assert not (await row(harness, vms[first].id)).ipv4_duplicate
    assert ("ipv4_duplicate", "True", "False") in await log_of(harness, vms[first].id)
