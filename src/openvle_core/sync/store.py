"""The sync's two short DB units of work: read the last view, then write the changes.

Proxmox is asked in between, outside any transaction. The write re-reads the rows it is
about to change and drops every change whose row moved meanwhile (an operation started,
another sync wrote): the next sync sees the new state. All writes are bulk statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.changelog.repository import Change, ChangelogRepository
from openvle_core.db.enums import ChangeSource, TemplateStatus
from openvle_core.db.models import Template
from openvle_core.db.session import transaction
from openvle_core.guests.errors import IdentityMismatch
from openvle_core.guests.identity import Evidence
from openvle_core.nodes.repository import NodeRepository, StorageRepository
from openvle_core.operations.repository import OperationRepository
from openvle_core.proxmox.models import ClusterResource
from openvle_core.sync.cluster import Guest, cores, memory_mb
from openvle_core.sync.plan import Diff
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository, VmView

# PVE's cluster resources lag up to ~10 s (pvestatd): a VM an operation just finished
# with may still show its old state, so it is left alone a little longer than that.
SETTLE = timedelta(seconds=20)
# A VM an operation was refused for (its guest is not ours) is checked again by the
# syncs of this long after, whatever the identity memo says.
RECHECK_REFUSED = timedelta(minutes=10)
# Evidence columns are written but not logged (the `identity` verdict is).
UNLOGGED = frozenset({"identity_serial", "identity_vmgenid", "identity_ctime"})


@dataclass
class DbState:
    """The DB's last view and what the sync must not touch."""

    views: list[VmView]
    templates: list[Template]
    skip_vms: set[str]
    skip_templates: set[str]
    skip_vmids: set[int]
    refused: set[str] = field(default_factory=set)  # VMs an operation was refused for lately


@dataclass
class Written:
    """What the write phase applied."""

    vms: int = 0
    templates: int = 0
    imported: int = 0
    changes: int = 0


async def read_state(sessions: async_sessionmaker[AsyncSession], now: datetime) -> DbState:
    """Every VM's columns, the templates, the targets busy or just finished, and the VMs
    an operation was refused for lately (the sync checks those again first)."""
    async with sessions() as session:
        ops = OperationRepository(session)
        return DbState(
            views=list(await VmRepository(session).views()),
            templates=list(await TemplateRepository(session).all()),
            skip_vms=await _skip(ops, "vm", now),
            skip_templates=await _skip(ops, "template", now),
            skip_vmids={int(v) for v in await _skip(ops, "vmid", now) if v.isdigit()},
            refused=await ops.failed_with("vm", IdentityMismatch.__name__, now - RECHECK_REFUSED),
        )


async def _skip(ops: OperationRepository, target_type: str, now: datetime) -> set[str]:
    return await ops.busy_targets(target_type) | await ops.finished_since(target_type, now - SETTLE)


async def write_changes(
    sessions: async_sessionmaker[AsyncSession],
    *,
    base: Mapping[str, VmView],
    vm_diffs: Mapping[str, Diff],
    template_diffs: Mapping[str, Diff],
    imports: Sequence[Guest],
    import_evidence: Mapping[int, Evidence],
    nodes: Sequence[ClusterResource],
    now: datetime,
    storages: Sequence[ClusterResource] = (),
    import_disks: Mapping[int, tuple[str, int]] | None = None,
) -> Written:
    """Apply every still-valid change in one transaction, with one changelog entry each."""
    written, changes = Written(), list[Change]()
    async with transaction(sessions) as session:
        kept = await _still_valid(session, base, vm_diffs)
        written.vms = await VmRepository(session).bulk_update(_rows(kept))
        changes += _changes("vm", kept, now)
        kept_templates, new = await _template_work(
            session, template_diffs, imports, import_evidence, import_disks or {}
        )
        written.templates = await TemplateRepository(session).bulk_update(_rows(kept_templates))
        changes += _changes("template", kept_templates, now)
        for template in new:
            await TemplateRepository(session).add(template)
            changes.append(_change("template", template.id, "status", None, template.status, now))
        written.imported = len(new)
        changes += await _write_nodes(session, nodes, now)
        await StorageRepository(session).replace_all([_storage_row(s) for s in storages])
        written.changes = await ChangelogRepository(session).add_many(changes)
    return written


async def _still_valid(
    session: AsyncSession, base: Mapping[str, VmView], diffs: Mapping[str, Diff]
) -> dict[str, Diff]:
    """The diffs whose VM row is as read and has no operation in flight now."""
    if not diffs:
        return {}
    busy = await OperationRepository(session).busy_targets("vm")
    current = {v.id: v for v in await VmRepository(session).views_of(list(diffs))}
    return {
        vm_id: diff
        for vm_id, diff in diffs.items()
        if vm_id not in busy and current.get(vm_id) == base[vm_id]
    }


async def _template_work(
    session: AsyncSession,
    diffs: Mapping[str, Diff],
    imports: Sequence[Guest],
    evidence: Mapping[int, Evidence],
    disks: Mapping[int, tuple[str, int]],
) -> tuple[dict[str, Diff], list[Template]]:
    """Template diffs still valid, and imports nobody made or started meanwhile."""
    if not diffs and not imports:
        return {}, []
    ops = OperationRepository(session)
    busy = await ops.busy_targets("template")
    converting = {int(v) for v in await ops.busy_targets("vmid") if v.isdigit()}
    rows = {t.id: t for t in await TemplateRepository(session).all()}
    kept = {
        tid: diff
        for tid, diff in diffs.items()
        if tid in rows
        and tid not in busy
        and all(getattr(rows[tid], f) == old for f, (old, _new) in diff.items())
    }
    taken = {t.vmid for t in rows.values()} | converting  # the operation adds those rows itself
    new = [
        _imported(g, evidence[g.vmid], disks.get(g.vmid))
        for g in imports
        if g.vmid is not None and g.vmid not in taken and g.vmid in evidence
    ]
    return kept, new


def _imported(guest: Guest, evidence: Evidence, disks: tuple[str, int] | None) -> Template:
    """A template row for a pool template nobody knew, with its guest's evidence and
    disks."""
    assert guest.vmid is not None
    storages, disk_mb = disks or (None, None)
    return Template(
        vmid=guest.vmid,
        name=guest.name or f"template-{guest.vmid}",
        node=guest.node,
        cores=cores(guest),
        memory_mb=memory_mb(guest),
        storages=storages,
        disk_mb=disk_mb,
        status=TemplateStatus.AVAILABLE.value,
        **evidence.columns(serial=False),
    )


async def _write_nodes(
    session: AsyncSession, nodes: Sequence[ClusterResource], now: datetime
) -> list[Change]:
    """Upsert the nodes seen, forget vanished ones; a status change is logged."""
    repo = NodeRepository(session)
    before = {n.name: n.status for n in await repo.all()}
    rows = [_node_row(n) for n in nodes]
    await repo.upsert_many(rows)
    changes = [
        _change("node", row["name"], "status", before.get(row["name"]), row["status"], now)
        for row in rows
        if before.get(row["name"]) != row["status"]
    ]
    for name in before.keys() - {row["name"] for row in rows}:
        await repo.delete(name)
        changes.append(_change("node", name, "status", before[name], None, now))
    return changes


def _node_row(node: ClusterResource) -> dict[str, Any]:
    return {
        "name": node.node,
        "status": node.status or "unknown",
        "cpu": float(node.cpu or 0.0),
        "maxcpu": int(node.maxcpu or 0),
        "mem": int(node.mem or 0),
        "maxmem": int(node.maxmem or 0),
    }


def _storage_row(storage: ClusterResource) -> dict[str, Any]:
    return {
        "storage": storage.storage,
        "node": storage.node,
        "shared": bool(storage.shared),
        "status": storage.status or "unknown",
        "disk": int(storage.disk or 0),
        "maxdisk": int(storage.maxdisk or 0),
    }


def _rows(diffs: Mapping[str, Diff]) -> list[dict[str, Any]]:
    return [{"id": eid, **{f: new for f, (_old, new) in d.items()}} for eid, d in diffs.items()]


def _changes(entity: str, diffs: Mapping[str, Diff], now: datetime) -> list[Change]:
    return [
        _change(entity, eid, f, old, new, now)
        for eid, diff in diffs.items()
        for f, (old, new) in diff.items()
        if f not in UNLOGGED
    ]


def _change(entity: str, eid: str, field: str, old: Any, new: Any, now: datetime) -> Change:
    text = (None if old is None else str(old)), (None if new is None else str(new))
    return Change(entity, eid, field, *text, source=ChangeSource.SYNC, time=now)
