"""One periodic sync tick under the sync lock: shared by the arq cron and the embedded scheduler.

The lock (in Redis, a renewed lease, when `ctx["redis"]` is set, else in-process) keeps a slow
previous run or an on-demand sync from overlapping; a tick that finds it held is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openvle_core.sync.lock import sync_lock
from openvle_core.sync.service import sync_cluster

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

SKIPPED = {"ok": True, "not_run": "a previous sync is still running"}


async def sync_tick(ctx: dict[str, Any]) -> dict[str, Any]:
    """Run one sync unless another one runs; returns the result's counts."""
    runtime: Runtime = ctx["runtime"]
    async with sync_lock(ctx.get("redis"), runtime.settings) as acquired:
        if not acquired:
            return dict(SKIPPED)
        result = await sync_cluster(
            sessions=runtime.sessions,
            proxmox=runtime.proxmox,
            snapshot=runtime.snapshot,
            settings=runtime.settings,
        )
        return result.as_dict()
