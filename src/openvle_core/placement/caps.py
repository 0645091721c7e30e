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

The limits live while some event operation of this runtime runs (`active_limits`); a
per-VM operation run on its own (recovered after a crash) finds none and is not limited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openvle_core.placement.nodes import ClusterFigures
from openvle_core.placement.slots import RedisSlots
from openvle_core.proxmox.models import VmConfig
from openvle_core.settings import WorkerSettings


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
        async with contextlib.AsyncExitStack() as stack:
            for key in keys:
                await stack.enter_async_context(self._slot(key))
            for key in keys:
                self.holding[key] = self.holding.get(key, 0) + 1
                self.peak[key] = max(self.peak.get(key, 0), self.holding[key])
            try:
                yield
            finally:
                for key in keys:
                    self.holding[key] -= 1


class CloneCaps:
    """The clone caps of one process, owned by its Runtime: they hold while some event
    operation of the process runs (`active()`, shared by concurrent event operations); a
    per-VM operation run on its own finds none (`current` is None) and is not limited."""

    def __init__(self, settings: WorkerSettings, shared: RedisSlots | None = None) -> None:
        self.settings = settings
        self.shared = shared
        self.current: Limits | None = None

    @contextlib.asynccontextmanager
    async def active(self) -> AsyncIterator[Limits]:
        """The process's limits while the block runs."""
        if self.current is None:
            self.current = Limits(self.settings, self.shared)
        limits = self.current
        limits.users += 1
        try:
            yield limits
        finally:
            limits.users -= 1
            if limits.users == 0 and self.current is limits:
                self.current = None
