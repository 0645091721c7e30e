"""Clone one guest, safe to re-run: reserve a vmid, start the task, record its UPID, wait,
then record the new guest's identity evidence before anything else is done to it.

Before each step Proxmox is asked first: a vmid that holds the row's guest (its recorded
evidence matches) means an earlier run finished the clone; a recorded UPID is waited for
instead of cloning again. The clone request writes our tag (`openvle-clone: <uuid>`)
into the new guest's description: until the evidence is recorded, that tag, on a vmid
the journal says we cloned into, is how a run recognises its own clone (a name never is).
A collision (another client took the vmid: synchronous `already exists`, the task
failing on the new id's config lock/file, or a guest without our tag where our clone
should be) releases the reservation and moves on to another id; the other client's VM
is never touched. The intent to clone is recorded before the POST: if a run died (or
the POST's answer was lost) between Proxmox accepting the clone and the UPID being
recorded, the next collision on that vmid waits for our own clone to appear, but only
while a clone task of our token from that source, started since the intent, still runs.
Any other task failure removes what is left of our half-made VM (tag confirmed) and is
raised for the retry policy.

Every clone waits for its slots under the clone caps first (`placement.caps`): its
target node's, its source's storages' and, for a full clone, the non-shared storages'
of that node. A caller that holds them already (an event's VM, placed and slotted with
the event's limits) is not made to take them twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Operation
from openvle_core.errors import TransientStep
from openvle_core.guests import vmids
from openvle_core.guests.errors import VmidCollisions
from openvle_core.guests.identity import (
    Claim,
    Evidence,
    Marks,
    clone_description,
    is_our_clone,
    member_node,
    mismatch,
    pool_node,
    require_member_node,
)
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.placement.caps import holds_slot, read_disks
from openvle_core.proxmox import ProxmoxClient, ProxmoxConflict, ProxmoxNotFound, ProxmoxTaskFailed
from openvle_core.proxmox.models import TaskSummary, VmConfig
from openvle_core.proxmox.tasks import Upid

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

MAX_COLLISIONS = 5
CLONE_TASK_TIMEOUT = 3600.0
EARLIER_CLONE_WAIT = CLONE_TASK_TIMEOUT  # an upper bound; the running tasks decide
CLOCK_SKEW = 120  # s of tolerance between our clock and the PVE node's task start times


async def _nothing(_: Evidence) -> None:
    return None


@dataclass
class CloneSpec:
    """What to clone, how the result is recognised (`uuid`, the evidence recorded so far)
    and how the vmid and the new guest's evidence are recorded."""

    source_vmid: int
    name: str
    uuid: str
    full: bool
    target: str | None
    vm_id: str | None
    vmid: int | None
    record_vmid: Callable[[int | None], Awaitable[None]]
    # records a reserved vmid inside the reservation's transaction (one commit for both)
    # instead of `record_vmid` after it
    record_vmid_in: Callable[[AsyncSession, int], Awaitable[object]] | None = None
    evidence: Evidence = field(default_factory=Evidence)
    legacy: bool = False  # a row made before evidence existed (see guests/identity.py)
    record_evidence: Callable[[Evidence], Awaitable[None]] = _nothing
    source_config: VmConfig | None = None  # the source's config if the caller has it
    config: VmConfig | None = None  # the clone's config as last read (evidence checked)
    sent_here: bool = False  # this run sent the clone that made the guest

    def claim(self) -> Claim:
        return Claim(self.name, self.evidence, uuid=self.uuid, legacy=self.legacy)


async def clone_guest(runtime: Runtime, op: Operation, spec: CloneSpec) -> int:
    """Clone until done, within the clone caps; returns the new vmid (its evidence
    recorded). Collisions move on."""
    if holds_slot():
        return await _clone_guest(runtime, op, spec)
    source_node = await require_member_node(runtime.proxmox, spec.source_vmid)
    disks = await read_disks(runtime.proxmox, spec.source_vmid, source_node)
    async with runtime.caps.clone_slot(spec.target or source_node, disks, spec.full):
        return await _clone_guest(runtime, op, spec)


async def _clone_guest(runtime: Runtime, op: Operation, spec: CloneSpec) -> int:
    vmid = spec.vmid
    lost: set[int] = set(journal.read(op).collisions)
    for _ in range(MAX_COLLISIONS):
        reserved_now = vmid is None
        if vmid is None:
            vmid = await _reserve(runtime, op, spec, frozenset(lost))
        if await _clone_once(runtime, op, spec, vmid, intent_noted=reserved_now):
            return vmid
        await vmids.release(runtime.sessions, vmid)
        await spec.record_vmid(None)
        collisions = [*journal.read(op).collisions, vmid]
        await journal.write(runtime.sessions, op, Journal(collisions=collisions))
        lost.add(vmid)
        vmid = None
    raise VmidCollisions(f"gave up after {MAX_COLLISIONS} vmid collisions: {sorted(lost)}")


async def _reserve(runtime: Runtime, op: Operation, spec: CloneSpec, avoid: frozenset[int]) -> int:
    """A new vmid, recorded (on the row through `spec`) with the intent to clone into it
    in the reservation's commit: nothing else happens before the clone request."""
    intent_at = int(time.time())

    async def record(session: AsyncSession, vmid: int) -> None:
        if spec.record_vmid_in is not None:
            await spec.record_vmid_in(session, vmid)
        await journal.merge(session, op, Journal(clone_intent=vmid, clone_intent_at=intent_at))

    vmid = await vmids.reserve(runtime, vm_id=spec.vm_id, op_id=op.id, avoid=avoid, also=record)
    if spec.record_vmid_in is None:
        await spec.record_vmid(vmid)
    spec.evidence, spec.legacy = Evidence(), False
    return vmid


async def _clone_once(
    runtime: Runtime, op: Operation, spec: CloneSpec, vmid: int, *, intent_noted: bool = False
) -> bool:
    """True when `vmid` now holds our clone (evidence recorded); False on a collision.
    `intent_noted`: this run has just reserved `vmid` and noted its intent to clone."""
    steps = journal.read(op)
    upid = steps.clone_upid if steps.clone_vmid == vmid else None
    # An earlier run recorded its intent but not the UPID: it may have died right after
    # Proxmox accepted the clone. A collision on this vmid may then be our own clone.
    maybe_started = upid is None and steps.clone_intent == vmid and not intent_noted
    if upid is None:
        # Nothing was ever sent for a vmid just reserved: what holds it is not ours, and
        # the clone request finds that out itself (`already exists`: a collision).
        asked = maybe_started or spec.evidence.recorded or spec.legacy
        existing = None
        if asked:
            existing = await _existing(runtime.proxmox, spec, vmid, maybe_ours=maybe_started)
        if existing is not None:
            return existing
        if not intent_noted:
            intent = Journal(clone_intent=vmid, clone_intent_at=int(time.time()))
            await journal.write(runtime.sessions, op, intent)
        upid = await _start(runtime.proxmox, spec, vmid)
        if upid is None:
            return maybe_started and await _await_earlier(runtime.proxmox, op, spec, vmid)
        sent = Journal(clone_upid=upid, clone_vmid=vmid)
        await journal.write(runtime.sessions, op, sent, upid=upid)  # one commit: both
        spec.sent_here = True
    try:
        await runtime.proxmox.wait_task(upid, CLONE_TASK_TIMEOUT)
        runtime.proxmox.joined_pool(vmid, spec.target or Upid.parse(upid).node)
    except ProxmoxNotFound as exc:  # the task is unknown (node reinstalled, log rotated)
        await journal.write(runtime.sessions, op, Journal(clone_upid=None))  # intent stays
        raise TransientStep(f"clone task {upid} vanished; checking Proxmox again") from exc
    except ProxmoxTaskFailed as exc:
        await journal.write(runtime.sessions, op, Journal(clone_upid=None, clone_intent=None))
        if vmids.is_collision(exc.exitstatus, vmid):
            return maybe_started and await _await_earlier(runtime.proxmox, op, spec, vmid)
        await remove_half_made(runtime.proxmox, spec, vmid)
        raise
    return bool(await _existing(runtime.proxmox, spec, vmid, maybe_ours=True))


async def _await_earlier(proxmox: ProxmoxClient, op: Operation, spec: CloneSpec, vmid: int) -> bool:
    """Wait for a clone an earlier run may have started to land in our pool: as long as
    a clone task of our token from the same source, started since the intent, still runs."""
    since = (journal.read(op).clone_intent_at or 0) - CLOCK_SKEW
    source_node = await require_member_node(proxmox, spec.source_vmid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EARLIER_CLONE_WAIT
    delay = 0.2
    while True:
        existing = await _existing(proxmox, spec, vmid, maybe_ours=True)
        if existing is not None:
            return existing
        tasks = await proxmox.active_tasks(source_node, vmid=spec.source_vmid, typefilter="qmclone")
        ours = [t for t in tasks if is_own_task(proxmox, t) and t.starttime >= since]
        if loop.time() >= deadline or not ours:
            return bool(await _existing(proxmox, spec, vmid, maybe_ours=True))
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def is_own_task(proxmox: ProxmoxClient, task: TaskSummary) -> bool:
    """A task our token started (a token with Sys.Audit on a node sees every task there:
    other clients' clones of the same template are not ours to wait for)."""
    settings = proxmox.settings
    return task.user == settings.user and task.tokenid == settings.token_name


async def _existing(
    proxmox: ProxmoxClient, spec: CloneSpec, vmid: int, *, maybe_ours: bool
) -> bool | None:
    """None if `vmid` is not in our pool; True if it is our finished clone (its evidence
    then recorded); else False. Without recorded evidence a guest is recognised as our
    clone only where the journal says we may have cloned into `vmid` (`maybe_ours`).
    The config read here is kept on `spec.config` (the next step needs no other read)."""
    node = await member_node(proxmox, vmid)
    if node == "":
        node = await pool_node(proxmox, vmid)
    if node is None:
        return None
    try:
        config = await proxmox.vm_config(node, vmid)
    except ProxmoxNotFound:  # gone since we last saw it: ask the pool itself
        node = await pool_node(proxmox, vmid)
        if node is None:
            return None
        config = await proxmox.vm_config(node, vmid)
    spec.config = config
    marks = Marks.of(config)
    if spec.evidence.recorded:
        ours = mismatch(spec.claim(), marks) is None
        if ours and marks.lock is not None:  # ours, busy (a backup, a migration): not lost
            raise TransientStep(f"VM {vmid} is locked ({marks.lock}); checking it again")
        return ours
    if spec.legacy:
        ours = marks.lock is None and mismatch(spec.claim(), marks) is None
        serial = marks.serial if marks.serial == spec.uuid else None
    else:
        ours, serial = maybe_ours and is_our_clone(marks, spec.uuid), None
    if ours:
        spec.evidence, spec.legacy = Evidence.of(marks, serial=serial), False
        await spec.record_evidence(spec.evidence)
    return ours


async def _start(proxmox: ProxmoxClient, spec: CloneSpec, vmid: int) -> str | None:
    """POST the clone with our tag in its description; None if the vmid is taken."""
    source_node = await require_member_node(proxmox, spec.source_vmid)
    source = spec.source_config or await proxmox.vm_config(source_node, spec.source_vmid)
    target = spec.target if spec.target and spec.target != source_node else None
    try:
        return await proxmox.start_clone(
            source_node,
            spec.source_vmid,
            vmid,
            name=spec.name,
            full=spec.full,
            target=target,
            description=clone_description(source.description, spec.uuid),
        )
    except ProxmoxConflict as exc:
        if vmids.is_collision(exc.message, vmid):
            return None
        raise


async def remove_half_made(proxmox: ProxmoxClient, spec: CloneSpec, vmid: int) -> bool:
    """Delete a failed clone's leftovers if they are in our pool and carry our tag."""
    node = await pool_node(proxmox, vmid)
    if node is None:
        return False
    marks = Marks.of(await proxmox.vm_config(node, vmid))
    if not is_our_clone(marks, spec.uuid, finished=False):
        return False
    await proxmox.delete_vm(node, vmid, purge=True)
    return True
