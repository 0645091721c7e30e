"""The "sync" operation kind: `request_sync` + `run_operation` run `sync_cluster` on demand.

A failed sync fails the operation with the result's reason; a successful one leaves the
result's counts on the operation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.operations.kinds import operation_kind
from openvle_core.reconcile.errors import SyncFailed
from openvle_core.reconcile.sync import sync_cluster

if TYPE_CHECKING:
    from openvle_core.db.models import Operation
    from openvle_core.runtime import Runtime

SYNC_KIND = "sync"


@operation_kind(SYNC_KIND)
async def run_sync(runtime: Runtime, op: Operation) -> None:
    """Sync now; the counts go to `op.result`, a failure raises `SyncFailed`."""
    result = await sync_cluster(
        sessions=runtime.sessions,
        proxmox=runtime.proxmox,
        snapshot=runtime.snapshot,
        settings=runtime.settings,
    )
    op.result = result.as_dict()
    if not result.ok:
        raise SyncFailed(result.error or "sync failed")
