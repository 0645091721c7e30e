"""The service's view of Proxmox: version, reachability, missing privileges, doctor checks."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MissingPrivilegeOut(BaseModel):
    """Any one of `privileges` is needed on `path`."""

    path: str = Field(examples=["/pool/OpenVLE-VMs"])
    privileges: list[str] = Field(examples=[["VM.Migrate"]])


class ProxmoxStatus(BaseModel):
    """The cluster as this service sees it."""

    reachable: bool
    version: str | None = Field(examples=["9.1.1"])
    release: str | None = Field(examples=["9.1"])
    pool: str = Field(examples=["OpenVLE-VMs"])
    missing_privileges: dict[str, list[MissingPrivilegeOut]] | None = Field(
        description="Per feature, what the token lacks (null when unreachable)."
    )
    error: str | None = Field(default=None, description="Why it is unreachable.")
    checks: list[DoctorCheckOut] = Field(
        default_factory=list,
        description="The Proxmox checks of `openvle doctor`, each failure with its fix.",
    )


class DoctorCheckOut(BaseModel):
    """One `openvle doctor` check: how it went and the commands that fix a failure."""

    name: str = Field(examples=["privileges: guest_agent"])
    status: str = Field(description="OK, WARN, FAIL or SKIP.", examples=["FAIL"])
    detail: str = Field(examples=["missing VM.GuestAgent.Audit on /pool/OpenVLE-VMs"])
    fix: list[str] = Field(
        examples=[["pveum role modify OpenVLE-VMs --append 1 --privs VM.GuestAgent.Audit"]]
    )


class SyncStatus(BaseModel):
    """When OpenVLE last saw the whole cluster (the periodic sync or one run on demand)."""

    synced_at: datetime | None = Field(
        description="When the last sync wrote the cluster's snapshot (null before the first).",
        examples=["2026-12-06T09:30:00Z"],
    )
    interval_s: int = Field(
        description="The periodic sync's period (WORKER_PVE_PERIODIC_INTERVAL).", examples=[60]
    )
