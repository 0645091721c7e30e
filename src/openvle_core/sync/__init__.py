"""The sync: the periodic reconciliation of cluster state into the snapshot store and the DB.

`sync_cluster(...)` (service.py) is a plain async function returning a `SyncResult`; the
periodic tick (`tick`, wrapped by the worker's arq cron) and the "sync" operation kind
(`tasks`) wrap it.
"""

from openvle_core.sync.result import SyncResult
from openvle_core.sync.service import sync_cluster

__all__ = ["SyncResult", "sync_cluster"]
