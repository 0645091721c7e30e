"""`SyncResult`: what one sync saw, changed and skipped, and why it failed if it did."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncResult:
    """Counts of one `sync_cluster` run; `error` is set (and `ok` False) when it failed.

    `resources` is every entry /cluster/resources returned; `pool_guests` the guests of our
    pool among them. `skipped` counts VMs left alone because they are transitional, have
    an operation in flight or just finished one, or are locked on Proxmox; `unknown` the
    pool guests still shown with status `unknown` (just cloned, stats lagging);
    `lookups_failed` the live looks (status, IPv4, identity) that failed for one guest;
    `unmanaged_vmids` lists the first 100 of the `unmanaged` pool VMs (unknown ones, and
    guests on the vmid of a VM or template of ours that is gone: `foreign`, whose rows
    this sync marked missing, first 100 in `foreign_vmids`). `identity_checks` counts
    the configs read to confirm a guest before its row changed; `identity_deferred` the
    rows whose changes wait for a later sync (their config could not be read, or more
    rows changed than one sync checks). `ip_deferred` counts the running VMs lacking an
    IPv4 whose guest agent was not asked yet: up for less than WORKER_AGENT_IP_FIRST_POLL.
    `ipv4_duplicates` counts the running VMs that report an IPv4 another one reports too.
    """

    ok: bool = True
    error: str | None = None
    resources: int = 0
    pool_guests: int = 0
    nodes: int = 0
    vms_updated: int = 0
    templates_updated: int = 0
    templates_imported: int = 0
    adopted: int = 0
    changes: int = 0
    skipped: int = 0
    missing: int = 0
    unknown: int = 0
    unmanaged: int = 0
    unmanaged_vmids: list[int] = field(default_factory=list)
    foreign: int = 0
    foreign_vmids: list[int] = field(default_factory=list)
    identity_checks: int = 0
    identity_deferred: int = 0
    ip_lookups: int = 0
    ip_deferred: int = 0
    ip_found: int = 0
    lookups_failed: int = 0
    ipv4_duplicates: int = 0
    status_checks: int = 0
    snapshot_written: int = 0
    snapshot_removed: int = 0
    duration_s: float = 0.0

    def fail(self, exc: BaseException) -> SyncResult:
        """Mark the run failed with the error's class and message."""
        self.ok = False
        self.error = f"{type(exc).__name__}: {exc}"
        return self

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (operation result, cron return value, CLI output)."""
        return dataclasses.asdict(self)
