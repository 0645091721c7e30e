"""The "sync" operation kind: `request_sync` + the runner run `sync_cluster` on demand.

It waits for a periodic sync that is running (the same lock), then syncs. A failed sync
fails the operation with the result's reason; a successful one leaves its counts on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.operations.kinds import Kinds, KindSpec, OperationKind
from openvle_core.sync.errors import SyncFailed
from openvle_core.sync.lock import redis_for, sync_lock, sync_timeout
from openvle_core.sync.service import sync_cluster

if TYPE_CHECKING:
    from openvle_core.db.models import Operation
    from openvle_core.runtime import Runtime


async def run_sync(runtime: Runtime, op: Operation) -> None:
    """Sync now; the counts go to `op.result`, a failure raises `SyncFailed`."""
    settings = runtime.settings
    async with (
        redis_for(settings) as redis,
        sync_lock(redis, settings, wait=sync_timeout(settings)) as acquired,
    ):
        if not acquired:
            raise SyncFailed(f"another sync held the lock for over {sync_timeout(settings)} s")
        result = await sync_cluster(
            sessions=runtime.sessions,
            proxmox=runtime.proxmox,
            snapshot=runtime.snapshot,
            settings=settings,
        )
    op.result = result.as_dict()
    if not result.ok:
        raise SyncFailed(result.error or "sync failed")


KINDS: Kinds = {OperationKind.SYNC: KindSpec(run_sync)}
