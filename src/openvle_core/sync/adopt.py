"""Adoption: an unmanaged pool VM that is provably one of our VMs whose guest is gone.

Its SMBIOS serial must be the UUID of a VM row lacking its guest, and the rest of that
row's evidence (vmgenid, creation time) must match too (`plan.judge`); a serial alone is
not enough, since a clone of one of our VMs carries its serial. A row without evidence
adopts nothing (a `legacy` one: by the old rule, its serial). The marks of unmanaged VMs
are remembered (`memo`), not read every sync.
"""

from __future__ import annotations

import time

from openvle_core.db.enums import GuestIdentity
from openvle_core.proxmox import ProxmoxClient
from openvle_core.sync import lookups
from openvle_core.sync.cluster import ClusterView, canonical_uuid
from openvle_core.sync.memo import memo_for
from openvle_core.sync.plan import adoptable_vms, judge, unmanaged_guests
from openvle_core.sync.result import SyncResult
from openvle_core.sync.store import DbState


async def adopt(
    result: SyncResult, proxmox: ProxmoxClient, state: DbState, view: ClusterView, limit: int
) -> dict[str, int]:
    """Unmanaged pool VMs provably ours: VM id -> vmid. The rest are listed in `result`."""
    known = {
        v.vmid for v in state.views if v.vmid is not None and v.identity != GuestIdentity.FOREIGN
    }
    known |= {t.vmid for t in state.templates}
    candidates = unmanaged_guests(view.guests, known)
    if not candidates:
        return {}
    adoptable = adoptable_vms(state.views, view.guests, state.skip_vms)
    memo = memo_for(proxmox)
    found, unread = memo.split(candidates, time.monotonic())
    read, result.lookups_failed = await lookups.marks(proxmox, unread, limit)
    memo.remember(unread, read)
    adopted: dict[str, int] = {}
    for vmid, marks in sorted({**found, **read}.items()):
        row = adoptable.get(canonical_uuid(marks.serial) or "")
        if row is not None and row.id not in adopted and judge(row, marks).reason is None:
            adopted[row.id] = vmid
    taken = set(adopted.values())
    result.unmanaged_vmids = [g.vmid for g in candidates if g.vmid and g.vmid not in taken]
    result.adopted = len(adopted)
    return adopted
