"""The sync's identity checks: one config read per row it is about to change, plus a few.

/cluster/resources says what is at a vmid, never which guest it is: before the sync
writes a change (or a live look's result) into a row, it reads the guest's config and
judges it against the row's evidence (`plan.judge`). That costs one GET per changed
row, at most `MAX_READS` per sync (more changes wait for the next sync), never one per
VM. A guest replaced without any visible change (same name, node and status) shows in
no diff, so each sync also checks up to `SWEEP` rows not confirmed for `TTL_S` seconds
(a memo per client, like the serial memo), the rows an operation was just refused for
(`IdentityMismatch`) first: every row is looked at again eventually, at a bounded cost.
Rows made before evidence existed (`legacy`) are all checked (within `MAX_READS`), so
they record their evidence in the first syncs after the upgrade.
The configs read are handed on to the IPv4 lookups (no second read): a VM that lacks
its IPv4 is asked for it by the same task right after its config confirmed it
(`ip_wanted`), still within the sync's bound on concurrent requests.
"""

from __future__ import annotations

import heapq
import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from openvle_core.db.enums import GuestIdentity
from openvle_core.db.models import Template
from openvle_core.guests.identity import Marks
from openvle_core.proxmox.client import ProxmoxClient
from openvle_core.proxmox.errors import ProxmoxError, ProxmoxUnavailable
from openvle_core.proxmox.models import VmConfig
from openvle_core.sync.cluster import Guest
from openvle_core.sync.lookups import bounded, ipv4_of
from openvle_core.sync.plan import GuestRef, Verdict, VmPlan, judge, needs_check
from openvle_core.vms.repository import VmView

MAX_READS = 1000
SWEEP = 25
TTL_S = 600.0


@dataclass
class IdentityMemo:
    """vmid -> (VM id, when its guest was last confirmed, monotonic seconds)."""

    entries: dict[int, tuple[str, float]] = field(default_factory=dict)

    def stale(
        self, refs: Sequence[GuestRef], now: float, limit: int, first: Collection[str] = ()
    ) -> list[GuestRef]:
        """Up to `limit` of `refs` not confirmed within the TTL, the least recent first;
        those in `first` (by VM id) before all others, whatever the memo says."""

        never, fresh, entry_of = float("-inf"), now - TTL_S, self.entries.get
        due: list[tuple[bool, float, int, GuestRef]] = []
        for ref in refs:  # runs per present row: no call per row but the dict lookup
            vm_id, vmid = ref.vm_id, ref.vmid
            if vm_id in first:
                due.append((False, never, vmid, ref))
                continue
            entry = entry_of(vmid)
            when = entry[1] if entry is not None and entry[0] == vm_id else never
            if when <= fresh:
                due.append((True, when, vmid, ref))
        # refused rows first, then the least recently confirmed, then by vmid
        return [d[3] for d in heapq.nsmallest(limit, due)]

    def settle(self, refs: Sequence[GuestRef], verdicts: Mapping[str, Verdict]) -> None:
        """Remember the rows just confirmed; forget those found foreign or not read."""
        now = time.monotonic()
        for ref in refs:
            verdict = verdicts.get(ref.vm_id)
            if verdict is not None and verdict.reason is None:
                self.entries[ref.vmid] = (ref.vm_id, now)
            else:
                self.entries.pop(ref.vmid, None)


_MEMOS: weakref.WeakKeyDictionary[ProxmoxClient, IdentityMemo] = weakref.WeakKeyDictionary()


def memo_for(proxmox: ProxmoxClient) -> IdentityMemo:
    """The identity memo of this client (one cluster, one pool)."""
    memo = _MEMOS.get(proxmox)
    if memo is None:
        memo = _MEMOS[proxmox] = IdentityMemo()
    return memo


@dataclass
class Checked:
    """What the identity checks of one sync found."""

    needed: set[str]
    verdicts: dict[str, Verdict]
    configs: dict[int, VmConfig]
    reads: int = 0
    failed: int = 0
    addresses: dict[str, str | None] = field(default_factory=dict)  # IPv4 looked up, by VM id
    ip_failed: int = 0


async def check_vms(
    proxmox: ProxmoxClient,
    plan: VmPlan,
    views: Mapping[str, VmView],
    limit: int,
    refused: Collection[str] = (),
    ip_wanted: Collection[str] = (),
) -> Checked:
    """Read the configs of the rows the plan would change (and the sweep's: `refused`
    first) and judge them; a row in `ip_wanted` (VM ids) whose guest is confirmed has its
    IPv4 looked up at once, by the same task (at most `limit` requests in flight)."""
    needed = needs_check(plan)
    chosen = list(needed.values())[:MAX_READS]
    rest: list[GuestRef] = []
    legacy: list[GuestRef] = []
    for vm_id, ref in plan.present.items():  # one pass over every present row
        if vm_id not in needed:
            (legacy if views[vm_id].identity == GuestIdentity.LEGACY else rest).append(ref)
    chosen += legacy[: MAX_READS - len(chosen)]  # each records its evidence, once
    room = min(SWEEP, MAX_READS - len(chosen))
    memo = memo_for(proxmox)
    chosen += memo.stale(rest, time.monotonic(), max(room, 0), first=refused)

    verdicts: dict[str, Verdict] = {}
    checked = Checked(set(needed), verdicts, {}, len(chosen))

    async def read(ref: GuestRef) -> VmConfig:
        config = await proxmox.vm_config(ref.node, ref.vmid)
        verdict = verdicts[ref.vm_id] = judge(views[ref.vm_id], Marks.of(config))
        if ref.vm_id in ip_wanted and verdict.reason is None:
            try:
                checked.addresses[ref.vm_id] = await ipv4_of(proxmox, ref, config)
            except ProxmoxUnavailable:
                raise
            except ProxmoxError:
                checked.ip_failed += 1
        return config

    configs, checked.failed = await bounded(chosen, limit, lambda r: r.vm_id, read)
    memo.settle(chosen, verdicts)
    checked.configs.update({ref.vmid: configs[ref.vm_id] for ref in chosen if ref.vm_id in configs})
    return checked


async def check_templates(
    proxmox: ProxmoxClient,
    templates: Sequence[Template],
    guests: Mapping[int, Guest],
    limit: int,
) -> tuple[dict[str, Marks], int]:
    """The marks of the given templates' guests (id -> marks); failed reads."""

    async def read(template: Template) -> Marks:
        node = guests[template.vmid].node or template.node or ""
        return Marks.of(await proxmox.vm_config(node, template.vmid))

    return await bounded(templates, limit, lambda t: t.id, read)


async def import_configs(
    proxmox: ProxmoxClient, imports: Sequence[Guest], limit: int
) -> tuple[dict[int, VmConfig], int]:
    """The configs of templates about to be imported (vmid -> config: their marks and
    disks); failed reads."""

    async def read(guest: Guest) -> VmConfig:
        return await proxmox.vm_config(guest.node or "", guest.vmid or 0)

    found, failed = await bounded(imports, limit, lambda g: str(g.vmid), read)
    return {int(vmid): config for vmid, config in found.items()}, failed
