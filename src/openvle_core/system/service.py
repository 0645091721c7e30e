"""Proxmox version, reachability, missing privileges and the doctor's checks, in one report."""

from __future__ import annotations

from dataclasses import dataclass, field

from openvle_core.doctor import Check, proxmox_checks
from openvle_core.proxmox import ProxmoxError, ProxmoxTlsError, ProxmoxUnavailable
from openvle_core.proxmox.models import MissingPrivilege
from openvle_core.runtime import Runtime


@dataclass(slots=True)
class ProxmoxReport:
    """What GET /system/proxmox answers; `missing_privileges` is None when unreachable."""

    reachable: bool
    pool: str
    version: str | None = None
    release: str | None = None
    missing_privileges: dict[str, list[MissingPrivilege]] | None = None
    error: str | None = None
    checks: list[Check] = field(default_factory=list)


async def proxmox_report(runtime: Runtime) -> ProxmoxReport:
    """Ask Proxmox for its version and the token's privileges, then run the doctor's checks."""
    report = await _status(runtime)
    report.checks = await proxmox_checks(runtime.proxmox, runtime.settings)
    return report


async def _status(runtime: Runtime) -> ProxmoxReport:
    pool = runtime.settings.proxmox.vms_pool
    try:
        version = await runtime.proxmox.version()
        privileges = await runtime.proxmox.check_privileges()
    except ProxmoxError as exc:
        return ProxmoxReport(
            reachable=not isinstance(exc, ProxmoxUnavailable | ProxmoxTlsError),
            pool=pool,
            error=f"{type(exc).__name__}: {exc.message}",
        )
    return ProxmoxReport(
        reachable=True,
        pool=privileges.pool,
        version=version.version,
        release=version.release,
        missing_privileges=privileges.missing,
    )
