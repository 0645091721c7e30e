"""Liveness and readiness answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Check(BaseModel):
    """One readiness check."""

    ok: bool
    detail: str | None = None


class Readiness(BaseModel):
    """Readiness: database, queue and snapshot store; Proxmox is reported, not fatal."""

    ready: bool
    checks: dict[str, Check]
    proxmox: Check


class Liveness(BaseModel):
    """The process is up."""

    status: str = Field(examples=["ok"])
