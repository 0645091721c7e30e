"""The reconciler: the periodic sync of cluster state into the snapshot store and the DB.

`sync_cluster(...)` is a plain async function returning a `SyncResult`; the periodic tick
(`tick`, wrapped by the worker's arq cron) and the "sync" operation kind (`operation`) wrap it.
"""

from openvle_core.reconcile import operation as operation
from openvle_core.reconcile.result import SyncResult
from openvle_core.reconcile.sync import sync_cluster

__all__ = ["SyncResult", "sync_cluster"]
