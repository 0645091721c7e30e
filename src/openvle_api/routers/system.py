"""POST /sync and GET /system/proxmox (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from openvle_api.accepted import ACCEPTED, accepted
from openvle_api.deps import AdminAuth, RuntimeDep, Uow
from openvle_api.responses import problems
from openvle_api.routers import API_PREFIX
from openvle_api.schemas import DoctorCheckOut, MissingPrivilegeOut, OperationOut, ProxmoxStatus
from openvle_core.doctor import proxmox_checks
from openvle_core.operations.service import request_sync
from openvle_core.proxmox import ProxmoxError, ProxmoxTlsError, ProxmoxUnavailable
from openvle_core.runtime import Runtime

router = APIRouter(prefix=API_PREFIX, tags=["system"])


@router.post(
    "/sync",
    name="requestSync",
    status_code=202,
    responses={**ACCEPTED, **problems(400, 401, 403, 409, 422)},
    summary="Run a sync now",
)
async def sync_now(uow: Uow, _: AdminAuth, response: Response) -> OperationOut:
    """Queue a sync of the cluster; 409 while one is already queued or running."""
    return accepted(uow, response, await request_sync(uow.session))


@router.get(
    "/system/proxmox",
    name="getProxmoxStatus",
    responses=problems(401, 403, 422),
    summary="Proxmox version, reachability and missing privileges",
)
async def proxmox_status(_: AdminAuth, runtime: RuntimeDep) -> ProxmoxStatus:
    """The PVE version, whether it answers, and what the token lacks on the pool."""
    status = await _proxmox_status(runtime)
    checks = await proxmox_checks(runtime.proxmox, runtime.settings)  # as `openvle doctor`
    status.checks = [DoctorCheckOut.model_validate(c.as_dict()) for c in checks]
    return status


async def _proxmox_status(runtime: Runtime) -> ProxmoxStatus:
    pool = runtime.settings.proxmox.vms_pool
    try:
        version = await runtime.proxmox.version()
        report = await runtime.proxmox.check_privileges()
    except ProxmoxError as exc:
        return ProxmoxStatus(
            reachable=not isinstance(exc, ProxmoxUnavailable | ProxmoxTlsError),
            version=None,
            release=None,
            pool=pool,
            missing_privileges=None,
            error=f"{type(exc).__name__}: {exc.message}",
        )
    missing = {
        feature: [MissingPrivilegeOut(path=m.path, privileges=list(m.privileges)) for m in items]
        for feature, items in report.missing.items()
    }
    return ProxmoxStatus(
        reachable=True,
        version=version.version,
        release=version.release,
        pool=report.pool,
        missing_privileges=missing,
    )
