"""GET /access/permissions: effective privileges of the caller, or of another principal."""

from __future__ import annotations

from typing import Any

from openvle_pvesim.contract import Request, route


@route("GET", "/access/permissions")
async def get_permissions(request: Request) -> dict[str, dict[str, int]]:
    """`{path: {priv: propagate}}`; reading others' needs Sys.Audit on /access."""
    caller = request.principal
    target: Any = request.params.get("userid")
    own = {caller.userid, caller.name}
    if target is None or target in own:
        subject = caller
    else:
        userid, _, token = str(target).partition("!")
        if not (caller.tokenid is None and userid == caller.userid):
            caller.check("/access", ["Sys.Audit"])
        subject = caller.access.principal(userid, str(target) if token else None)
    path = request.params.get("path")
    if path is not None:
        return subject.permissions(str(path))
    cluster = request.cluster
    return subject.permissions(members=[v for v in cluster.vms if cluster.pool_of(v)])
