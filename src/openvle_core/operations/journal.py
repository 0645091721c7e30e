"""The journal of an operation's steps, kept in `op.result`: read and written here only.

Handlers record each step as soon as Proxmox accepted it (a UPID, a reserved vmid, "the
clone is done"), each in its own short transaction, so a run after a crash reads the
journal and continues where the last run stopped instead of doing a step twice. Crash
safety depends on these keys, so every one is declared, typed, on `Journal`; the
operation's API view shows the same document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.logging import bind
from openvle_core.operations.repository import OperationRepository


class Journal(BaseModel):
    """Every key an operation records; unset keys are left as they are on write."""

    model_config = ConfigDict(extra="allow")

    # the clone of a guest (guests/cloning.py): what a re-run must not do twice
    collisions: list[int] = Field(default_factory=list)  # vmids other clients took first
    clone_intent: int | None = None  # the vmid whose clone POST was about to be sent
    clone_intent_at: int | None = None  # when (epoch seconds), to recognise our task
    clone_upid: str | None = None  # the clone task of `clone_vmid`
    clone_vmid: int | None = None
    cloned: bool = False  # the VM exists and is ours
    configured: bool = False  # the one config update after the clone was sent
    derived_vmid: int | None = None  # template.create by full clone: the new template's vmid
    derived_vmgenid: str | None = None  # ... and its identity evidence, recorded right after
    derived_ctime: int | None = None
    destroy_upid: str | None = None  # the destroy task of a delete or archive
    # what the operation reports (no step depends on these)
    vmid: int | None = None
    node: str | None = None
    previous_node: str | None = None
    power: str | None = None
    status: str | None = None
    ipv4: str | None = None
    ip_missing: str | None = None
    deleted_vmid: int | None = None
    deleted_name: str | None = None  # its name: the row is gone, a progress view still names it
    template_id: str | None = None
    failed: list[dict[str, Any]] | None = None
    clone_slots_peak: dict[str, int] | None = None
    archived_vms: int | None = None


def read(op: Operation) -> Journal:
    """The operation's journal as last written (by this run or an earlier one)."""
    return Journal.model_validate(op.result or {})


async def write(
    sessions: async_sessionmaker[AsyncSession],
    op: Operation,
    entry: Journal,
    *,
    upid: str | None = None,
) -> Journal:
    """Merge the keys set on `entry` into the journal and commit; `op` sees the result.
    `upid`: a Proxmox task of the operation, added to its tasks in the same commit."""
    async with transaction(sessions) as session:
        await merge(session, op, entry, upid=upid)
    return read(op)


async def merge(
    session: AsyncSession, op: Operation, entry: Journal, *, upid: str | None = None
) -> None:
    """`write`'s change inside the caller's transaction (it commits, with its own
    changes: both or neither)."""
    values = entry.model_dump(exclude_unset=True)
    if values.get("vmid") is not None:
        bind(vmid=values["vmid"])  # later log lines of this operation name the VM
    repo = OperationRepository(session)
    row = await repo.require(op.id)
    row.result = {**(row.result or {}), **values}
    if upid is not None:
        await repo.add_upid(row, upid)
        op.upids = list(row.upids)
    op.result = dict(row.result)


async def add_upid(sessions: async_sessionmaker[AsyncSession], op: Operation, upid: str) -> None:
    """Record a Proxmox task of this operation (before waiting for it)."""
    async with transaction(sessions) as session:
        row = await OperationRepository(session).require(op.id)
        await OperationRepository(session).add_upid(row, upid)
        op.upids = list(row.upids)
