"""Errors of the sync (carried in `SyncResult.error`, or failing the sync operation)."""

from __future__ import annotations

from openvle_core.errors import OpenVLEError


class SyncFailed(OpenVLEError):
    """The sync could not complete (Proxmox, the DB or the snapshot store failed)."""

    code = "sync_failed"


class PoolLooksEmpty(OpenVLEError):
    """Proxmox shows no guest in our pool while the DB knows VMs there.

    More likely a lost privilege (VM.Audit, Pool.Audit) or a cluster hiccup than every VM
    deleted at once, so the sync refuses to mark them all missing.
    """

    code = "pool_looks_empty"
