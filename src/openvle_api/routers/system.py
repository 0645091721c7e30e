"""POST /sync and GET /system/proxmox (admin); GET /system/sync (read)."""

from __future__ import annotations

from fastapi import Response

from openvle_api.accepted import ACCEPTED, accepted
from openvle_api.deps import API_PREFIX, AdminAuth, ReadAuth, RuntimeDep, Uow
from openvle_api.responses import problems
from openvle_api.routing import api_router
from openvle_api.schemas.operations import OperationOut
from openvle_api.schemas.system import (
    DoctorCheckOut,
    MissingPrivilegeOut,
    ProxmoxStatus,
    SyncStatus,
)
from openvle_core.sync.service import request_sync
from openvle_core.system.service import proxmox_report

router = api_router(prefix=API_PREFIX, tags=["system"])


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
    "/system/sync",
    name="getSyncStatus",
    responses=problems(401, 422),
    summary="When the cluster was last synced",
)
async def sync_status(_: ReadAuth, runtime: RuntimeDep) -> SyncStatus:
    """When the last sync, periodic or on demand, wrote the cluster's snapshot (the nodes,
    VM states and IPs the other endpoints show are that fresh), and the sync's period."""
    return SyncStatus(
        synced_at=await runtime.snapshot.synced_at(),
        interval_s=runtime.settings.worker.pve_periodic_interval,
    )


@router.get(
    "/system/proxmox",
    name="getProxmoxStatus",
    responses=problems(401, 403, 422),
    summary="Proxmox version, reachability and missing privileges",
)
async def proxmox_status(_: AdminAuth, runtime: RuntimeDep) -> ProxmoxStatus:
    """The PVE version, whether it answers, what the token lacks, and doctor's checks."""
    report = await proxmox_report(runtime)
    missing = None
    if report.missing_privileges is not None:
        missing = {
            feature: [MissingPrivilegeOut(path=m.path, privileges=list(m.privileges)) for m in ms]
            for feature, ms in report.missing_privileges.items()
        }
    return ProxmoxStatus(
        reachable=report.reachable,
        version=report.version,
        release=report.release,
        pool=report.pool,
        missing_privileges=missing,
        error=report.error,
        checks=[DoctorCheckOut.model_validate(c.as_dict()) for c in report.checks],
    )
