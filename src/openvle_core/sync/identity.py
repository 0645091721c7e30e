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

import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

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
    """vmid -> (VM id, when its guest was last confirmed, monotonic seconds), in the order
    of confirmation (oldest first)."""

    entries: dict[int, tuple[str, float]] = field(default_factory=dict)

    def stale(
        self,
        present: Mapping[str, GuestRef],
        skip: Collection[str],
        now: float,
        limit: int,
        first: Collection[str] = (),
    ) -> list[GuestRef]:
        """Up to `limit` of the `present` rows (VM id -> ref; but those in `skip`) not
        confirmed within the TTL: those in `first` (VM ids) before all others, whatever
        the memo says, by vmid; then rows never confirmed, in the order of `present`; then
        the least recently confirmed. It stops once it has `limit` (the memo is kept in
        the order of confirmation, oldest first): no sort of every row per sync."""
        if limit <= 0:
            return []
        chosen = sorted(
            (present[vm_id] for vm_id in first if vm_id in present and vm_id not in skip),
            key=lambda ref: ref.vmid,
        )[:limit]
        taken = {ref.vm_id for ref in chosen}
        entry_of, nobody = self.entries.get, ("", 0.0)
        never = (  # runs per present row until `limit` are found: no call but the lookups
            ref
            for vm_id, ref in present.items()
            if entry_of(ref.vmid, nobody)[0] != vm_id and vm_id not in skip and vm_id not in taken
        )
        chosen += islice(never, limit - len(chosen))
        if len(chosen) < limit:
            fresh, taken = now - TTL_S, {ref.vm_id for ref in chosen}
            for vmid, (vm_id, when) in self.entries.items():  # oldest confirmation first
                if when > fresh or len(chosen) >= limit:
                    break
                ref = present.get(vm_id)
                if (
                    ref is not None
                    and ref.vmid == vmid
                    and vm_id not in skip
                    and vm_id not in taken
                ):
                    chosen.append(ref)
        return chosen

    def settle(self, refs: Sequence[GuestRef], verdicts: Mapping[str, Verdict]) -> None:
        """Remember the rows just confirmed (moved to the end: the memo stays in the order
        of confirmation); forget those found foreign or not read."""
        now = time.monotonic()
        for ref in refs:
            verdict = verdicts.get(ref.vm_id)
            self.entries.pop(ref.vmid, None)
            if verdict is not None and verdict.reason is None:
                self.entries[ref.vmid] = (ref.vm_id, now)


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
    legacy = [ref for ref in plan.legacy if ref.vm_id not in needed]
    chosen += legacy[: MAX_READS - len(chosen)]  # each records its evidence, once
    room = min(SWEEP, MAX_READS - len(chosen))
    memo = memo_for(proxmox)
    skip = needed.keys() | {ref.vm_id for ref in legacy}
    chosen += memo.stale(plan.present, skip, time.monotonic(), room, first=refused)

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
