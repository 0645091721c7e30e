"""The /access endpoints: permissions, realms, users, groups and the ticket login.

Sources (pve-access-control): API2/AccessControl.pm (`permissions`, `get_ticket`,
`create_ticket` with `create_ticket_do` / `verify_auth`, RPCEnvironment.pm
`compute_api_permission` for `cap`), API2/Domains.pm `index`, API2/User.pm `index`,
API2/Group.pm `index`.
"""

from __future__ import annotations

import re
from typing import Any

from openvle_pvesim.access import Principal
from openvle_pvesim.accounts import REALMS, Account, realm_of
from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError
from openvle_pvesim.tickets import TicketAuthority

CLUSTER_NAME = "openvle-sim"
# RPCEnvironment.pm compute_api_permission: which privileges each `cap` section collects.
CAP_SECTIONS = {
    "vms": r"VM\.|Permissions\.Modify",
    "access": r"(User|Group)\.|Permissions\.Modify",
    "storage": r"Datastore\.|Permissions\.Modify",
    "nodes": r"Sys\.|Permissions\.Modify",
    "sdn": r"SDN\.|Permissions\.Modify",
    "dc": r"Sys\.Audit|Sys\.Modify|SDN\.",
    "mapping": r"Mapping\.|Permissions.Modify",
}
CAP_PATHS = ("/", "/nodes", "/access/groups", "/vms", "/storage", "/sdn", "/mapping")
REALM_TYPES = {realm: kind for realm, kind, _comment in REALMS}


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


@route("GET", "/access/domains")
async def domains(request: Request) -> list[dict[str, Any]]:
    """The realms, for the login box: no authentication needed."""
    return [{"realm": realm, "type": kind, "comment": comment} for realm, kind, comment in REALMS]


@route("GET", "/access/groups")
async def groups(request: Request) -> list[dict[str, Any]]:
    """Groups where the caller has User.Modify, Sys.Audit or Group.Allocate."""
    access = request.principal.access
    privs = ("User.Modify", "Sys.Audit", "Group.Allocate")
    out = []
    for groupid, group in sorted(access.groups.items()):
        if not any(request.principal.has(f"/access/groups/{groupid}", p) for p in privs):
            continue
        entry: dict[str, Any] = {"groupid": groupid}
        if group.comment is not None:
            entry["comment"] = group.comment
        entry["users"] = ",".join(sorted(group.users))
        out.append(entry)
    return out


@route("GET", "/access/users")
async def users(request: Request) -> list[dict[str, Any]]:
    """Users the caller may see: all with User.Modify or Sys.Audit on /access/groups,
    else the members of groups it has them on, and always the caller itself."""
    principal = request.principal
    access = principal.access
    privs = ("User.Modify", "Sys.Audit")
    all_users = any(principal.has("/access/groups", p) for p in privs)
    allowed: set[str] = set()
    for groupid, group in access.groups.items():
        if any(principal.has(f"/access/groups/{groupid}", p) for p in privs):
            allowed |= group.users
    full = bool(request.params.get("full"))
    wanted = request.params.get("enabled")
    out = []
    for userid, account in sorted(access.accounts.items()):
        if not (all_users or userid == principal.name or userid in allowed):
            continue
        if wanted is not None and account.enable != bool(wanted):
            continue
        out.append(user_entry(principal, account, full))
    return out


def user_entry(principal: Principal, account: Account, full: bool) -> dict[str, Any]:
    entry = account.fields()
    if full:
        entry["groups"] = ",".join(sorted(account.groups))
        tokens = principal.access.tokens_of(account.userid)
        entry["tokens"] = [{"tokenid": name, **data} for name, data in sorted(tokens.items())]
    realm_type = REALM_TYPES.get(realm_of(account.userid))
    if realm_type is not None:
        entry["realm-type"] = realm_type
    entry["userid"] = account.userid
    return entry


@route("GET", "/access/ticket")
async def ticket_page(request: Request) -> None:
    """A dummy for formatters that show a login page."""
    return None


@route("POST", "/access/ticket")
async def create_ticket(request: Request) -> dict[str, Any]:
    """Log in with a password (or renew with a valid ticket): a new ticket and CSRF
    token, the user's API capabilities, the cluster name if it may audit `/`. Any failure
    is 401 `authentication failure`, whatever the cause."""
    params = request.params
    username = str(params["username"])
    if params.get("realm"):
        username += f"@{params['realm']}"
    access = request.principal.access
    account = access.accounts.get(username)
    secret = str(params["password"])
    verify = bool(params.get("path") and params.get("privs"))
    known = account is not None and account.enabled()
    if account is None or not known or not _credentials_ok(access.tickets, account, secret, verify):
        raise PVEError(401, "authentication failure")
    user = access.principal(username)
    result: dict[str, Any] = {"username": username}
    if verify:
        privs = [p for p in re.split(r"[,;\s]+", str(params["privs"])) if p]
        if not all(user.has(str(params["path"]), priv) for priv in privs):
            raise PVEError(401, "authentication failure")
    else:
        result["ticket"] = access.tickets.ticket(username)
        result["CSRFPreventionToken"] = access.tickets.csrf_token(username)
    result["cap"] = capabilities(user)
    if user.has("/", "Sys.Audit"):
        result["clustername"] = CLUSTER_NAME
    return result


def _credentials_ok(
    tickets: TicketAuthority, account: Account, secret: str, verify_only: bool
) -> bool:
    """The password, or a valid ticket of this user; for a new ticket root@pam's ticket
    counts for anyone (`create_ticket_do`), for a privilege check only the user's own
    (`verify_auth`)."""
    holder = tickets.verify_ticket(secret)
    if holder == account.userid or (holder == "root@pam" and not verify_only):
        return True
    return account.check_password(secret)


def capabilities(user: Principal) -> dict[str, dict[str, int]]:
    """`cap`: per GUI section, the privileges the user has somewhere relevant."""
    cap: dict[str, dict[str, int]] = {section: {} for section in CAP_SECTIONS}
    paths = dict.fromkeys([*CAP_PATHS, *sorted(user.access.acl_paths())])
    for path in paths:
        privs = user.access.privileges_of(user.userid, None, path)
        top = re.match(r"^/(\w+)", path)
        section = top[1] if top else "dc"
        if section == "pool":
            for priv in privs:
                if priv.startswith(("VM.", "Permissions.Modify")):
                    cap["vms"][priv] = 1
                if priv.startswith(("Datastore.", "Permissions.Modify")):
                    cap["storage"][priv] = 1
        elif section in CAP_SECTIONS:
            pattern = re.compile(rf"^({CAP_SECTIONS[section]})")
            cap[section].update((priv, 1) for priv in privs if pattern.match(priv))
    return cap
