"""A bounded in-process memo of the identity marks read from unmanaged pool VMs.

Adoption reads the config of every unmanaged pool VM to find our serial (and the
vmgenid and creation time it must also match); without a memo that cost grows with the
number of unmanaged VMs on every sync. These marks do not change while the VM exists, so
they are kept per (vmid, name) for `TTL_S` seconds: a VM recreated under the same vmid
with another name is read again at once, one with the same name within the TTL at the
latest. Whether remembered marks are adoptable is decided on every sync (a VM row lacking
its guest may appear later). One memo per ProxmoxClient (a weak key: it goes with the
client), at most `MAX_ENTRIES` entries.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from openvle_core.guests.identity import Marks
from openvle_core.proxmox.client import ProxmoxClient
from openvle_core.sync.cluster import Guest

TTL_S = 600.0
MAX_ENTRIES = 20_000
Key = tuple[int, str | None]


@dataclass
class SerialMemo:
    """(vmid, name) -> (marks, when read, monotonic seconds)."""

    entries: dict[Key, tuple[Marks, float]] = field(default_factory=dict)

    def split(self, guests: Sequence[Guest], now: float) -> tuple[dict[int, Marks], list[Guest]]:
        """The remembered marks of `guests` and the guests still to read; entries of VMs
        no longer listed (deleted, adopted, managed) or older than the TTL are dropped."""
        listed = {(g.vmid, g.name) for g in guests if g.vmid is not None}
        self.entries = {k: v for k, v in self.entries.items() if k in listed and now - v[1] < TTL_S}
        known: dict[int, Marks] = {}
        unread: list[Guest] = []
        for guest in guests:
            entry = self.entries.get((guest.vmid or 0, guest.name))
            if entry is None:
                unread.append(guest)
            else:
                known[guest.vmid or 0] = entry[0]
        return known, unread

    def remember(self, guests: Sequence[Guest], read: dict[int, Marks]) -> None:
        """Keep the marks just read (failed reads are not remembered)."""
        now = time.monotonic()
        for guest in guests:
            if guest.vmid in read and len(self.entries) < MAX_ENTRIES:
                self.entries[(guest.vmid, guest.name)] = (read[guest.vmid], now)


_MEMOS: weakref.WeakKeyDictionary[ProxmoxClient, SerialMemo] = weakref.WeakKeyDictionary()


def memo_for(proxmox: ProxmoxClient) -> SerialMemo:
    """The memo of this client (one cluster, one pool)."""
    memo = _MEMOS.get(proxmox)
    if memo is None:
        memo = _MEMOS[proxmox] = SerialMemo()
    return memo
