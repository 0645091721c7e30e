"""Read side of VMs: one VM, a filtered page of VMs, as rows of the API's columns, and
the pool guests that are not ours (from the last sync's snapshot).

Read through a RowReader (no session, no ORM objects): these are the API's hot GET
paths. This module owns the API's VM filters, order (by id) and cursors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, Integer, Row, bindparam, select

from openvle_core.db.enums import GuestIdentity
from openvle_core.db.models import Template, Vm
from openvle_core.db.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from openvle_core.db.session import RowReader
from openvle_core.snapshot.port import SnapshotStore
from openvle_core.vms.errors import VmNotFound

VM_COLUMNS = (
    Vm.id,
    Vm.vmid,
    Vm.name,
    Vm.node,
    Vm.template_id,
    Vm.event_id,
    Vm.participant,
    Vm.status,
    Vm.ipv4,
    Vm.ipv4_duplicate,
    Vm.full_clone,
    Vm.ha_managed,
    Vm.identity,
    Vm.created_at,
    Vm.updated_at,
)
_VM_BY_ID = select(*VM_COLUMNS).where(Vm.id == bindparam("vm_id"))  # built once


async def get_vm_row(reader: RowReader, vm_id: str) -> Row[Any]:
    """The VM_COLUMNS of the VM with this UUID; VmNotFound otherwise."""
    rows = await reader.rows(_VM_BY_ID, {"vm_id": vm_id})
    if not rows:
        raise VmNotFound(f"VM {vm_id} not found")
    return rows[0]


async def list_vm_rows(
    reader: RowReader,
    *,
    event_id: str | None = None,
    template_id: str | None = None,
    node: str | None = None,
    status: str | None = None,
    identity: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Row[Any]]:
    """A page of VMs matching every given filter, oldest (lowest id) first, as rows."""
    size = clamp_limit(limit)
    given = {
        "event_id": event_id,
        "template_id": template_id,
        "node": node,
        "status": status,
        "identity": identity,
    }
    params: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    if cursor is not None:
        params["after"] = decode_cursor(cursor)
    stmt = _vm_page_stmt(tuple(name for name in given if name in params), cursor is not None)
    rows = await reader.rows(stmt, {**params, "size": size + 1})
    if len(rows) <= size:
        return Page(items=rows, next_cursor=None)
    return Page(items=rows[:size], next_cursor=encode_cursor(rows[size - 1].id))


@functools.cache
def _vm_page_stmt(filters: tuple[str, ...], after: bool) -> Executable:
    """The page query for these filters, built once per combination (all values bound)."""
    stmt = select(*VM_COLUMNS)
    for name in filters:
        stmt = stmt.where(getattr(Vm, name) == bindparam(name))
    if after:
        stmt = stmt.where(Vm.id > bindparam("after"))
    return stmt.order_by(Vm.id.asc()).limit(bindparam("size", type_=Integer))


@dataclass(frozen=True, slots=True)
class UnmanagedGuest:
    """A pool VM that is not ours: unknown to us, or on the vmid of our VM `vm_id`, whose
    guest is gone (`foreign`). Listed, never touched."""

    vmid: int
    name: str | None
    node: str | None
    status: str | None
    vm_id: str | None


_OWNERS = select(Vm.vmid, Vm.id, Vm.identity).where(Vm.vmid.is_not(None))
_TEMPLATE_VMIDS = select(Template.vmid)


async def list_unmanaged(
    reader: RowReader,
    snapshot: SnapshotStore,
    pool: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[UnmanagedGuest]:
    """The pool's VMs that are not ours as the last sync saw them, by vmid."""
    size = clamp_limit(limit)
    after = int(decode_cursor(cursor)) if cursor is not None else -1
    owners = {row.vmid: row for row in await reader.rows(_OWNERS)}
    templates = {row.vmid for row in await reader.rows(_TEMPLATE_VMIDS)}
    found: list[UnmanagedGuest] = []
    for guest in await snapshot.list(type="qemu", pool=pool):
        vmid = int(guest.get("vmid") or 0)
        owner = owners.get(vmid)
        ours = owner is not None and owner.identity != GuestIdentity.FOREIGN
        if vmid <= after or guest.get("template") or vmid in templates or ours:
            continue
        found.append(
            UnmanagedGuest(
                vmid,
                guest.get("name"),
                guest.get("node"),
                guest.get("status"),
                None if owner is None else str(owner.id),
            )
        )
    found.sort(key=lambda g: g.vmid)
    if len(found) <= size:
        return Page(items=found, next_cursor=None)
    return Page(items=found[:size], next_cursor=encode_cursor(found[size - 1].vmid))
