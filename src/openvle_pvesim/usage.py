"""What exists and runs costs the nodes memory and the storages space, kept per VM.

The rule (documented on the simulator's reference page):

- A running (or starting) guest holds `RESIDENT_FRACTION` (half) of its configured
  memory on its node: idle guests touch their RAM lazily and KSM merges equal pages, so
  a real node's `mem` grows by about that much per guest, not by the full `memory`. The
  VM's `memhost` is that charge, so a node's used memory is its own base plus the sum of
  its guests' `memhost`. Stopping, suspending to disk or destroying the guest frees it.
- A volume costs its storage its `size=`; a linked clone's volume (`base-X/vm-Y`) only
  `LINKED_FRACTION` of it (it shares the template's blocks). Local storages are counted
  per node, shared ones once.

`Usage` keeps each VM's charges so a change costs O(that VM): `VMTable` charges a VM
when it enters `cluster.vms` and frees it when it leaves, `VM.__setattr__` (model.py)
recharges it when `running`, `starting`, `node` or `config` is assigned, and handlers
that edit a config's drives in place call `Usage.update(vm)` (so must a test that edits
`vm.config` behind the model's back; `rebuild` recomputes everything).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from openvle_pvesim.vmconfig import parse_size, storage_of, volid, volume_keys

RESIDENT_FRACTION = 0.5
LINKED_FRACTION = 0.1


class Guest(Protocol):
    """What the ledger reads of a VM (model.VM)."""

    vmid: int
    node: str
    config: dict[str, Any]
    running: bool
    starting: bool

    @property
    def maxmem(self) -> int: ...


class Pool(Protocol):
    """What the ledger reads of a storage (model.Storage)."""

    shared: bool


def resident(guest: Guest) -> int:
    """Bytes a running guest holds on its node."""
    return int(guest.maxmem * RESIDENT_FRACTION)


class Usage:
    """Live memory per node and space per (storage, node) with each VM's share of them."""

    def __init__(self, storages: Mapping[str, Pool]) -> None:
        self.storages = storages
        self.node_mem: dict[str, int] = {}
        self.space: dict[tuple[str, str], int] = {}  # (sid, node or "" when shared)
        self._mem: dict[int, tuple[str, int]] = {}
        self._disk: dict[int, dict[tuple[str, str], int]] = {}

    def memory_of(self, vmid: int) -> int:
        """The guest's `memhost`: what it holds on its node now (0 when not running)."""
        charge = self._mem.get(vmid)
        return charge[1] if charge else 0

    def used(self, sid: str, node: str) -> int:
        """Bytes used on storage `sid` as seen from `node`."""
        storage = self.storages.get(sid)
        where = "" if storage is None or storage.shared else node
        return self.space.get((sid, where), 0)

    def update(self, guest: Guest) -> None:
        """Recharge one VM's memory and volumes from its current state."""
        self.update_memory(guest)
        self._set_disk(guest.vmid, self._volumes(guest))

    def update_memory(self, guest: Guest) -> None:
        held = guest.running or guest.starting
        self._set_mem(guest.vmid, (guest.node, resident(guest)) if held else None)

    def forget(self, vmid: int) -> None:
        """The VM is gone: free everything it held."""
        self._set_mem(vmid, None)
        self._set_disk(vmid, {})

    def rebuild(self, guests: Iterable[Guest]) -> None:
        """Recompute every charge (the pvestatd tick)."""
        self.node_mem.clear()
        self.space.clear()
        self._mem.clear()
        self._disk.clear()
        for guest in guests:
            self.update(guest)

    def _set_mem(self, vmid: int, charge: tuple[str, int] | None) -> None:
        old = self._mem.pop(vmid, None)
        if old is not None:
            self.node_mem[old[0]] = self.node_mem.get(old[0], 0) - old[1]
        if charge is not None:
            self._mem[vmid] = charge
            self.node_mem[charge[0]] = self.node_mem.get(charge[0], 0) + charge[1]

    def _set_disk(self, vmid: int, charges: dict[tuple[str, str], int]) -> None:
        for where, size in self._disk.pop(vmid, {}).items():
            self.space[where] = self.space.get(where, 0) - size
        if charges:
            self._disk[vmid] = charges
            for where, size in charges.items():
                self.space[where] = self.space.get(where, 0) + size

    def _volumes(self, guest: Guest) -> dict[tuple[str, str], int]:
        charges: dict[tuple[str, str], int] = {}
        for key in volume_keys(guest.config):
            value = str(guest.config[key])
            sid = storage_of(value)
            storage = self.storages.get(sid)
            if storage is None:
                continue
            size = parse_size(value)
            if "/" in volid(value):
                size = int(size * LINKED_FRACTION)
            where = (sid, "" if storage.shared else guest.node)
            charges[where] = charges.get(where, 0) + size
        return charges


class VMTable(dict[int, Any]):
    """`cluster.vms`: a dict that charges a VM to `usage` on entry and frees it on exit.

    It also hands the VM the ledger (`_usage`), so the VM's own assignments recharge it.
    """

    def __init__(self, usage: Usage) -> None:
        super().__init__()
        self.usage = usage

    def __setitem__(self, vmid: int, vm: Any) -> None:
        old = self.get(vmid)
        if old is not None and old is not vm:
            self._detach(old)
        super().__setitem__(vmid, vm)
        object.__setattr__(vm, "_usage", self.usage)
        self.usage.update(vm)

    def __delitem__(self, vmid: int) -> None:
        self._detach(self[vmid])
        super().__delitem__(vmid)

    def pop(self, vmid: int, *default: Any) -> Any:
        if vmid in self:
            self._detach(self[vmid])
        return super().pop(vmid, *default)

    def clear(self) -> None:
        for vm in list(self.values()):
            self._detach(vm)
        super().clear()

    def _detach(self, vm: Any) -> None:
        object.__setattr__(vm, "_usage", None)
        self.usage.forget(vm.vmid)
