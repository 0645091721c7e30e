"""Concurrency limits of event work, shared by every deploy and archive of one process.

Proxmox answers parallel clones with lock timeouts (the storage lock of a full clone, the
config lock of a node), so a clone waits for a slot first: `WORKER_CLONES_PER_NODE` per
target node, `WORKER_CLONES_PER_STORAGE` per storage it writes to, and for a full clone
onto a non-shared storage `WORKER_FULL_CLONES_PER_STORAGE` per (storage, node). Slots are
always taken in one global order (node, storages, full-clone storages), so two clones
never wait for each other. `WORKER_EVENT_PARALLEL_VMS` bounds the VMs one event works on.

With Redis configured (`REDIS_URL`) the node, storage and full-clone slots are taken in
Redis (`slots.RedisSlots`), so the caps hold across every worker process; without it
(the embedded default, one process) they are asyncio semaphores of this process.

Every clone takes them: an event's VMs inside the event's limits (`active()`, which
also shares its placement and its reads of the templates' disks), any other clone (a
`vm.clone` of `POST /api/v1/vms`, a template derived by a full clone, a VM of an event
recovered or retried on its own) in `guests.cloning.clone_guest` through `clone_slot`.
A task that already holds its slots (`holds_slot()`) does not take them again. The
semaphores of one process are the caps' (`CloneCaps`), shared by every user; in Redis
the key prefix (`WORKER_CLONE_CAPS_KEY`) decides which instances share one budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from openvle_core.placement.disks import disk_mb_of, storages_of
from openvle_core.placement.nodes import ClusterFigures
from openvle_core.placement.slots import RedisSlots
from openvle_core.proxmox import ProxmoxClient
from openvle_core.proxmox.models import VmConfig
from openvle_core.settings import WorkerSettings

_HOLDING: ContextVar[bool] = ContextVar("openvle_clone_slot_held", default=False)


def holds_slot() -> bool:
    """True inside a `clone_slot` block of this task (its clone must not take another)."""
    return _HOLDING.get()


@dataclass
class SlotGauge:
    """What the clones of one process hold and wait for now, over every user of the caps."""

    waiting: int = 0
    holding: dict[tuple[str, ...], int] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateDisks:
    """Where a template's disks live: its node, config, storages and which are shared."""

    node: str
    config: VmConfig
    storages: frozenset[str]
    shared: frozenset[str]
    disk_mb: int = 0  # what a full clone copies


@dataclass
class Limits:
    """The semaphores of one process, created on first use per key."""

    settings: WorkerSettings
    shared: RedisSlots | None = None  # cluster-wide slots; None: this process's semaphores
    placing: asyncio.Lock = field(default_factory=asyncio.Lock)
    templates: dict[int, TemplateDisks] = field(default_factory=dict)
    figures: ClusterFigures | None = None  # nodes and storages, read once per batch
    _slots: dict[tuple[str, ...], asyncio.Semaphore] = field(default_factory=dict)
    gauge: SlotGauge = field(default_factory=SlotGauge)
    users: int = 0

    holding: dict[tuple[str, ...], int] = field(default_factory=dict)
    peak: dict[tuple[str, ...], int] = field(default_factory=dict)

    def size(self, key: tuple[str, ...]) -> int:
        """How many holders the slot `key` admits."""
        if key[0] == "node":
            return self.settings.clones_per_node
        if key[0] == "storage":
            return self.settings.clones_per_storage
        return self.settings.full_clones_per_storage

    def _slot(self, key: tuple[str, ...]) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.shared is not None:
            return self.shared.hold(key, self.size(key))
        if key not in self._slots:
            self._slots[key] = asyncio.Semaphore(self.size(key))
        return self._slots[key]

    def clone_keys(self, node: str, disks: TemplateDisks, full: bool) -> list[tuple[str, ...]]:
        """The slots a clone to `node` needs, in the global order."""
        keys: list[tuple[str, ...]] = [("node", node)]
        keys += [("storage", sid) for sid in sorted(disks.storages)]
        if full:
            keys += [("full", sid, node) for sid in sorted(disks.storages - disks.shared)]
        return keys

    @contextlib.asynccontextmanager
    async def clone_slot(self, node: str, disks: TemplateDisks, full: bool) -> AsyncIterator[None]:
        """Hold every slot a clone needs while the block runs (peaks kept for checks)."""
        keys = self.clone_keys(node, disks, full)
        gauge = self.gauge
        async with contextlib.AsyncExitStack() as stack:
            gauge.waiting += 1
            try:
                for key in keys:
                    await stack.enter_async_context(self._slot(key))
            finally:
                gauge.waiting -= 1
            for key in keys:
                self.holding[key] = self.holding.get(key, 0) + 1
                self.peak[key] = max(self.peak.get(key, 0), self.holding[key])
                gauge.holding[key] = gauge.holding.get(key, 0) + 1
            held = _HOLDING.set(True)
            try:
                yield
            finally:
                _HOLDING.reset(held)
                for key in keys:
                    self.holding[key] -= 1
                    gauge.holding[key] -= 1


class CloneCaps:
    """The clone caps of one process, owned by its Runtime. An event operation works in
    `active()` limits (shared by concurrent event operations: their placement lock and
    cached reads); any other clone takes its slots with `clone_slot`. Both use the same
    semaphores (or Redis slots), so every clone of the process counts."""

    def __init__(self, settings: WorkerSettings, shared: RedisSlots | None = None) -> None:
        self.settings = settings
        self.shared = shared
        self.current: Limits | None = None
        self.gauge = SlotGauge()
        self._slots: dict[tuple[str, ...], asyncio.Semaphore] = {}

    def _limits(self) -> Limits:
        return Limits(self.settings, self.shared, _slots=self._slots, gauge=self.gauge)

    @contextlib.asynccontextmanager
    async def clone_slot(self, node: str, disks: TemplateDisks, full: bool) -> AsyncIterator[None]:
        """Hold the slots of one clone (an event's limits, if active, record its peaks)."""
        async with (self.current or self._limits()).clone_slot(node, disks, full):
            yield

    @contextlib.asynccontextmanager
    async def active(self) -> AsyncIterator[Limits]:
        """The process's limits while the block runs."""
        if self.current is None:
            self.current = self._limits()
        limits = self.current
        limits.users += 1
        try:
            yield limits
        finally:
            limits.users -= 1
            if limits.users == 0 and self.current is limits:
                self.current = None


async def read_disks(proxmox: ProxmoxClient, vmid: int, node: str) -> TemplateDisks:
    """A clone source's disks from its config, and which of their storages are shared."""
    config = await proxmox.vm_config(node, vmid)
    resources = await proxmox.cluster_resources("storage")
    shared = frozenset(r.storage for r in resources if r.storage and r.shared)
    return TemplateDisks(node, config, frozenset(storages_of(config)), shared, disk_mb_of(config))
