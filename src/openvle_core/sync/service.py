"""`sync_cluster`: bring OpenVLE's view up to date with the cluster, cheaply at any size.

One GET /cluster/resources; the snapshot store gets the pool's guests and the nodes (one
bulk write of what changed); the DB is read once and written once, in bulk, with work
proportional to the number of changes; only the few VMs that need it are asked live
(paused?, IPv4, identity marks of unmanaged VMs). A row is changed from a guest only
after that guest's config confirmed it is the row's (`sync.identity`: one read per
changed row); a row whose vmid now holds another guest becomes `missing` and `foreign`
and that guest is listed as unmanaged, never touched. Every changed field is logged.
The cyclic garbage collector is paused while a sync runs (`collector.paused`): its
rows, guests and refs are short-lived and acyclic, and walking them took a tenth of the
sync's CPU.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from functools import partial

from pymongo.errors import PyMongoError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core import collector, metrics
from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Operation
from openvle_core.db.session import note_unavailable
from openvle_core.db.types import utcnow
from openvle_core.errors import OpenVLEError
from openvle_core.guests.identity import Evidence, Marks
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.placement.disks import disk_mb_of, storages_of
from openvle_core.proxmox import ProxmoxClient
from openvle_core.settings import Settings
from openvle_core.snapshot import SnapshotStore, SqlSnapshotStore
from openvle_core.sync import identity, lookups
from openvle_core.sync.adopt import adopt
from openvle_core.sync.cluster import ClusterView, fetch_cluster
from openvle_core.sync.errors import PoolLooksEmpty
from openvle_core.sync.plan import (
    GuestRef,
    TemplatePlan,
    VmPlan,
    apply_template_checks,
    apply_verdicts,
    plan_ipv4_duplicates,
    plan_templates,
    plan_vms,
    template_checks,
)
from openvle_core.sync.result import SyncResult
from openvle_core.sync.store import (
    DbState,
    Written,
    read_state,
    write_changes,
)
from openvle_core.vms.repository import VmView

log = logging.getLogger(__name__)
# What a sync can fail with: Proxmox (all ProxmoxError are OpenVLEError), the DB, Mongo.
SYNC_ERRORS = (OpenVLEError, SQLAlchemyError, PyMongoError, OSError)
LOGGED_IDS = 20
MAX_LISTED = 100  # unmanaged vmids kept in the result (the count is complete)


async def sync_cluster(
    *,
    sessions: async_sessionmaker[AsyncSession],
    proxmox: ProxmoxClient,
    snapshot: SnapshotStore,
    settings: Settings,
    now: datetime | None = None,
) -> SyncResult:
    """Run one sync; a failure is returned in the result (and counted), not raised."""
    started = time.perf_counter()
    result = SyncResult()
    try:
        with collector.paused():  # 50,000 short-lived rows and refs: nothing to collect
            await _sync(result, sessions, proxmox, snapshot, settings, now or utcnow())
    except* SYNC_ERRORS as failures:  # the snapshot write runs beside the DB work
        result.fail(failures.exceptions[0])
        note_unavailable(failures.exceptions[0])  # the database's outage: logged once more
        log.warning("cluster sync failed: %s", result.error)
    result.duration_s = round(time.perf_counter() - started, 4)
    if result.ok:
        log.info(
            "cluster sync in %.2f s: %d resources, %d VMs and %d templates updated, %d changes",
            result.duration_s,
            result.resources,
            result.vms_updated,
            result.templates_updated + result.templates_imported,
            result.changes,
        )
    _record(result)
    return result


async def _sync(
    result: SyncResult,
    sessions: async_sessionmaker[AsyncSession],
    proxmox: ProxmoxClient,
    snapshot: SnapshotStore,
    settings: Settings,
    now: datetime,
) -> None:
    """Fetch (reading the DB's view meanwhile), then write the snapshot and update the DB
    (at once when they are separate)."""
    reading = asyncio.create_task(read_state(sessions, now))  # while Proxmox answers
    try:
        view = await fetch_cluster(proxmox, settings.proxmox.vms_pool)
    finally:  # the read ends either way: a query cancelled midway spoils its connection
        await asyncio.gather(reading, return_exceptions=True)
    state = reading.result()
    result.resources, result.pool_guests, result.nodes = (
        view.total,
        len(view.guests),
        len(view.nodes),
    )
    if not view.guests and (present := _present(state)):
        raise PoolLooksEmpty(
            f"pool {settings.proxmox.vms_pool} shows no guests while {present} VMs are known: "
            "not marking them all missing (check the token's VM.Audit and Pool.Audit)"
        )
    documents = view.snapshot_documents()
    if isinstance(snapshot, SqlSnapshotStore):  # shares the DB (SQLite: maybe one connection)
        replaced = await snapshot.replace_all(documents, now)
        await _update_db(result, sessions, proxmox, settings, view, state, now)
    else:  # MongoDB is independent of the DB work: write both at once
        async with asyncio.TaskGroup() as group:
            writing = group.create_task(snapshot.replace_all(documents, now))
            await _update_db(result, sessions, proxmox, settings, view, state, now)
        replaced = writing.result()
    result.snapshot_written, result.snapshot_removed = replaced.written, replaced.removed


async def _update_db(
    result: SyncResult,
    sessions: async_sessionmaker[AsyncSession],
    proxmox: ProxmoxClient,
    settings: Settings,
    view: ClusterView,
    state: DbState,
    now: datetime,
) -> None:
    """Look live where needed at what changed since the DB's view `state`, write the
    changes in one transaction."""
    limit = settings.worker.sync_agent_concurrency
    adopted = await adopt(result, proxmox, state, view, limit)
    plan = plan_vms(state.views, view.guests, state.skip_vms, adopted)
    first_poll = settings.worker.agent_ip_first_poll
    plan.ip_wanted = _booted(result, plan.ip_wanted, view.uptimes, first_poll)
    views = {v.id: v for v in state.views}
    early = {ref.vm_id for ref in lookups.ip_sample(plan.ip_wanted)}
    booted = partial(_booted, result, uptimes=view.uptimes, first_poll=first_poll)
    checked = await identity.check_vms(proxmox, plan, views, limit, state.refused, early)
    apply_verdicts(plan, views, checked.needed, checked.verdicts)
    result.identity_checks = checked.reads
    result.lookups_failed += checked.failed
    await _live_looks(result, proxmox, plan, views, limit, checked, early, booted)
    _report_duplicates(result, plan_ipv4_duplicates(plan, state.views, state.skip_vms))
    vm_vmids = {v.vmid for v in state.views if v.vmid is not None} | set(adopted.values())
    templates = plan_templates(
        state.templates, view.guests, state.skip_templates, vm_vmids, state.skip_vmids
    )
    await _check_templates(result, proxmox, templates, state, view, limit)
    await _template_disks(result, proxmox, state, view, templates, limit)
    written = await write_changes(
        sessions,
        base={vm_id: views[vm_id] for vm_id in plan.diffs},
        vm_diffs=plan.diffs,
        template_diffs=templates.diffs,
        imports=templates.imports,
        import_evidence=templates.evidence,
        nodes=view.nodes,
        now=now,
        storages=view.storages,
        import_disks=templates.disks,
    )
    _tally(result, plan, templates, written, settings.proxmox.vms_pool)


def _booted(
    result: SyncResult, refs: list[GuestRef], uptimes: Mapping[int, int], first_poll: float
) -> list[GuestRef]:
    """The running VMs whose guest agent is worth asking for their IPv4: up for at least
    `first_poll` seconds (WORKER_AGENT_IP_FIRST_POLL), or of unknown uptime. One that
    booted since (started behind OpenVLE's back) leases its address first; a later sync
    asks it (`ip_deferred`)."""
    kept = [ref for ref in refs if uptimes.get(ref.vmid, first_poll) >= first_poll]
    result.ip_deferred += len(refs) - len(kept)
    return kept


def _present(state: DbState) -> int:
    """How many VMs the DB believes are on Proxmox (have a vmid and are not missing)."""
    return sum(1 for v in state.views if v.vmid is not None and v.status != VmStatus.MISSING)


async def _template_disks(
    result: SyncResult,
    proxmox: ProxmoxClient,
    state: DbState,
    view: ClusterView,
    templates: TemplatePlan,
    limit: int,
) -> None:
    """Read the disks of template rows that lack them (once each: rows made before the
    sync kept them): placement needs their storages and sizes."""
    lacking = {
        t.vmid: t
        for t in state.templates
        if t.storages is None and t.id not in state.skip_templates and t.vmid in view.guests
    }
    guests = [view.guests[vmid] for vmid in lacking if view.guests[vmid].template]
    if not guests:
        return
    found, failed = await lookups.template_disks(proxmox, guests, limit)
    result.lookups_failed += failed
    for vmid, (storages, disk_mb) in found.items():
        diff = templates.diffs.setdefault(lacking[vmid].id, {})
        diff["storages"] = (None, storages)
        diff["disk_mb"] = (lacking[vmid].disk_mb, disk_mb)


async def _check_templates(
    result: SyncResult,
    proxmox: ProxmoxClient,
    plan: TemplatePlan,
    state: DbState,
    view: ClusterView,
    limit: int,
) -> None:
    """Confirm the templates about to change, and read the evidence and disks of new ones
    (one config read each)."""
    checked = template_checks(plan, state.templates, view.guests)
    marks, failed = await identity.check_templates(proxmox, checked, view.guests, limit)
    apply_template_checks(plan, checked, marks)
    found, import_failed = await identity.import_configs(proxmox, plan.imports, limit)
    plan.imports = [g for g in plan.imports if g.vmid in found]
    plan.evidence = {vmid: Evidence.of(Marks.of(c)) for vmid, c in found.items()}
    plan.disks = {
        vmid: (",".join(sorted(storages_of(c))), disk_mb_of(c)) for vmid, c in found.items()
    }
    result.identity_checks += len(checked) + len(found) + import_failed
    result.lookups_failed += failed + import_failed


def _tally(
    result: SyncResult, plan: VmPlan, templates: TemplatePlan, written: Written, pool: str
) -> None:
    """Copy the counts into the result; VMs newly missing or foreign are logged."""
    result.vms_updated, result.templates_updated = written.vms, written.templates
    result.templates_imported, result.changes = written.imported, written.changes
    result.skipped = plan.skipped + templates.skipped
    result.unknown = plan.unknown + templates.unknown
    result.identity_deferred = plan.unverified + templates.unverified
    result.missing = len(plan.missing)
    foreign = sorted({ref.vmid for ref in plan.foreign} | set(templates.foreign))
    result.foreign, result.foreign_vmids = len(foreign), foreign[:MAX_LISTED]
    unmanaged = sorted(set(result.unmanaged_vmids) | {ref.vmid for ref in plan.foreign})
    result.unmanaged, result.unmanaged_vmids = len(unmanaged), unmanaged[:MAX_LISTED]
    if plan.missing:
        log.warning(
            "%d VMs gone from pool %s, marked missing: %s",
            len(plan.missing),
            pool,
            plan.missing[:LOGGED_IDS],
        )
    if foreign:
        log.warning(
            "vmids %s now hold guests that are not ours: our rows marked missing (foreign), "
            "the guests listed as unmanaged and left alone",
            foreign[:LOGGED_IDS],
        )
    elif result.unmanaged_vmids:
        log.info("unmanaged VMs in the pool: %s", result.unmanaged_vmids[:LOGGED_IDS])


async def _live_looks(
    result: SyncResult,
    proxmox: ProxmoxClient,
    plan: VmPlan,
    views: Mapping[str, VmView],
    limit: int,
    checked: identity.Checked,
    early: Collection[str],
    booted: Callable[[list[GuestRef]], list[GuestRef]],
) -> None:
    """Settle paused VMs through qmpstatus, then fetch IPv4 for running VMs lacking one
    and `booted` (but those the identity checks asked already, `early`)."""
    statuses, failed = await lookups.live_statuses(proxmox, plan.paused_checks, limit)
    result.status_checks = len(plan.paused_checks)
    resumed: list[GuestRef] = []
    for ref in plan.paused_checks:
        status, current = statuses.get(ref.vm_id), views[ref.vm_id]
        if status is not None and status != current.status:
            plan.change(ref.vm_id, "status", current.status, status.value)
        if status == VmStatus.RUNNING and current.ipv4 is None:
            resumed.append(ref)
    plan.ip_wanted += booted(resumed)
    rest = [ref for ref in plan.ip_wanted if ref.vm_id not in early]
    found, asked, ip_failed = await lookups.ipv4_addresses(
        proxmox, rest, limit, checked.configs, lookups.MAX_IP_LOOKUPS - len(early)
    )
    found |= checked.addresses
    asked += len(checked.addresses) + checked.ip_failed
    ip_failed += checked.ip_failed
    for vm_id, address in found.items():
        if address is not None:
            plan.change(vm_id, "ipv4", None, address)
    result.ip_lookups = asked
    result.lookups_failed += ip_failed + failed
    result.ip_found = sum(1 for a in found.values() if a is not None)


def _report_duplicates(result: SyncResult, shared: dict[str, list[str]]) -> None:
    """Count the VMs sharing an IPv4 and name the addresses in the log."""
    result.ipv4_duplicates = sum(len(ids) for ids in shared.values())
    if shared:
        listed = dict(list(shared.items())[:LOGGED_IDS])
        log.warning("running VMs report the same IPv4 (DHCP misconfigured?): %s", listed)


def _record(result: SyncResult) -> None:
    """Duration, outcome, resources seen, changes written, guests not ours, into the
    Prometheus metrics."""
    metrics.SYNC_SECONDS.observe(result.duration_s)
    metrics.SYNC_RUNS.labels("ok" if result.ok else "failed").inc()
    if result.ok:
        metrics.SYNC_RESOURCES.set(result.resources)
        metrics.SYNC_IPV4_DUPLICATES.set(result.ipv4_duplicates)
        metrics.SYNC_UNMANAGED.set(result.unmanaged)
        metrics.SYNC_FOREIGN.inc(result.foreign)
    metrics.SYNC_CHANGES.inc(result.changes)


async def request_sync(session: AsyncSession) -> Operation:
    """Queue a cluster sync (one at a time: a second request while one runs is TargetBusy)."""
    return await OperationRepository(session).create(OperationKind.SYNC, "cluster", "sync")
