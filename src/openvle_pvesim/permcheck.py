"""Evaluate a schema method's `permissions` the way RPCEnvironment.pm does.

`check_api2_permissions`: root@pam passes, `user: world` passes anyone (the login calls),
`user: all` passes any authenticated principal,
a `check` expression is evaluated, a method without permissions is root-only. The
expression forms are `perm` (with `any` and `require_param`), `and`, `or` and
`userid-param self`; 403 texts are PVE's (`Permission check failed (/vms/100, VM.Allocate)`).
"""

from __future__ import annotations

import re
from typing import Any

from openvle_pvesim.access import ROOT, Principal, permission_denied
from openvle_pvesim.errors import PVEError

_TEMPLATE_RE = re.compile(r"\{([^}]+)\}")


def check_method(
    permissions: dict[str, Any] | None, principal: Principal, params: dict[str, Any]
) -> None:
    """Raise PVE's 403 unless `principal` may call a method with these `permissions`."""
    if principal.userid == ROOT and principal.tokenid is None:
        return
    if permissions is not None and permissions.get("user") == "world":
        return
    if permissions is None:
        raise permission_denied("user != root@pam")
    if permissions.get("user") == "all":
        return
    check = permissions.get("check")
    if not check:
        raise permission_denied()
    evaluate(check, principal, params, noerr=False)


def _fill(template: str, params: dict[str, Any]) -> str:
    return _TEMPLATE_RE.sub(lambda m: _text(params.get(m[1])), template)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def evaluate(check: list[Any], principal: Principal, params: dict[str, Any], noerr: bool) -> bool:
    """exec_api2_perm_check: True when allowed; raises 403 when denied unless `noerr`."""
    test = check[0]
    if test == "and":
        for sub in check[1:]:
            evaluate(sub, principal, params, noerr=False)
        return True
    if test == "or":
        if any(evaluate(sub, principal, params, noerr=True) for sub in check[1:]):
            return True
        return _deny(noerr)
    if test == "perm":
        return _perm(check, principal, params, noerr)
    if test == "userid-param" and check[1] == "self":
        if params.get("userid") == principal.userid:
            return True
        return _deny(noerr)
    return _deny(noerr)


def _perm(check: list[Any], principal: Principal, params: dict[str, Any], noerr: bool) -> bool:
    path, privs = check[1], check[2]
    options = dict(zip(check[3::2], check[4::2], strict=False))
    required = options.get("require_param")
    if required and params.get(required) is None:
        return _deny(noerr)
    try:
        principal.check(_fill(path, params), privs, any_=bool(options.get("any")))
    except PVEError:
        if noerr:
            return False
        raise
    return True


def _deny(noerr: bool) -> bool:
    if noerr:
        return False
    raise permission_denied()
