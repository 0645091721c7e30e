"""Helpers shared by the handlers: the caller's task user, VM lookup, lock checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_pvesim.contract import Request
from openvle_pvesim.errors import PVEError

if TYPE_CHECKING:
    from openvle_pvesim.access import Principal
    from openvle_pvesim.cluster import VM


def task_user(principal: Principal) -> str:
    """The UPID user: `user@realm!token` for tokens, else the user id."""
    tokenid = principal.tokenid
    if not tokenid:
        return principal.userid
    return tokenid if "!" in tokenid else f"{principal.userid}!{tokenid}"


def req_vm(req: Request) -> VM:
    """The VM addressed by {node} and {vmid}; it must live on that node."""
    return req.cluster.vm_at(str(req.params["node"]), int(req.params["vmid"]))


def check_lock(vm: VM, skiplock: bool = False) -> None:
    """`VM is locked (clone)`: the synchronous config-lock check."""
    lock = vm.config.get("lock")
    if lock is not None and not skiplock:
        raise PVEError(500, f"VM is locked ({lock})")


def root_only_skiplock(req: Request) -> bool:
    """`skiplock` is for root@pam only, as PVE enforces."""
    if not req.params.get("skiplock"):
        return False
    if req.principal.userid != "root@pam" or req.principal.tokenid:
        raise PVEError(
            400, "Parameter verification failed.", {"skiplock": "Only root may use this option."}
        )
    return True
