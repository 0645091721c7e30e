"""Users, API tokens, roles and ACLs as PVE's access control computes them.

Semantics (pve-access-control AccessControl.pm / RPCEnvironment.pm): ACLs are inherited
down the path tree when `propagate` is set, the deepest level with an entry for the
principal wins, `/vms/<id>` also gets the roles of `/pool/<its pool>` (propagate 0), a
privilege-separated token gets the intersection of its own and its user's privileges,
and root@pam has every privilege.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from openvle_pvesim.accounts import Account, Group
from openvle_pvesim.errors import PVEError
from openvle_pvesim.schema import load_schema
from openvle_pvesim.tickets import TicketAuthority

ROOT = "root@pam"
_TOKEN_HEADER_RE = re.compile(r"(?:^|\s)PVEAPIToken(?:=| )([^;]*)")
_TOKENID_RE = re.compile(r"^([^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+)!([A-Za-z][A-Za-z0-9.\-_]+)$")
_VM_PATH_RE = re.compile(r"^/vms/(\d+)$")
DEFAULT_PATHS = ("/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms")

# Privilege groups of AccessControl.pm: (root, admin, user, audit) per category.
_PRIVGROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "VM": (
        (),
        (
            "VM.Config.Disk",
            "VM.Config.CPU",
            "VM.Config.Memory",
            "VM.Config.Network",
            "VM.Config.HWType",
            "VM.Config.Options",
            "VM.Allocate",
            "VM.Clone",
            "VM.Migrate",
            "VM.Monitor",
            "VM.Replicate",
            "VM.Snapshot.Rollback",
            "VM.GuestAgent.FileRead",
            "VM.GuestAgent.FileWrite",
            "VM.GuestAgent.FileSystemMgmt",
            "VM.GuestAgent.Unrestricted",
        ),
        (
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "VM.Console",
            "VM.Backup",
            "VM.PowerMgmt",
            "VM.Snapshot",
            "VM.GuestAgent.Audit",
        ),
        ("VM.Audit",),
    ),
    "Sys": (
        ("Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"),
        ("Sys.Console", "Sys.Syslog"),
        (),
        ("Sys.Audit",),
    ),
    "Datastore": (
        (),
        ("Datastore.Allocate", "Datastore.AllocateTemplate"),
        ("Datastore.AllocateSpace",),
        ("Datastore.Audit",),
    ),
    "SDN": ((), ("SDN.Allocate",), ("SDN.Use",), ("SDN.Audit",)),
    "User": (
        ("Realm.Allocate", "Permissions.Modify"),
        ("User.Modify", "Group.Allocate", "Realm.AllocateUser"),
        (),
        (),
    ),
    "Pool": ((), ("Pool.Allocate",), (), ("Pool.Audit",)),
    "Mapping": ((), ("Mapping.Modify",), ("Mapping.Use",), ("Mapping.Audit",)),
}


def builtin_roles(valid: frozenset[str]) -> dict[str, frozenset[str]]:
    """PVE's built-in roles, restricted to the privileges `valid` in the version."""
    roles: dict[str, set[str]] = {
        "Administrator": set(valid),
        "NoAccess": set(),
        "PVETemplateUser": {"VM.Clone", "VM.Audit"},
        "PVEAdmin": set(),
        "PVEAuditor": set(),
    }
    for category, (_root, admin, user, audit) in _PRIVGROUPS.items():
        roles[f"PVE{category}Admin"] = {*admin, *user, *audit}
        roles["PVEAdmin"] |= {*admin, *user, *audit}
        roles["PVEAuditor"] |= set(audit)
        if user or audit:
            roles[f"PVE{category}User"] = {*user, *audit}
    return {name: frozenset(privs & valid) for name, privs in roles.items()}


@dataclass(frozen=True)
class _Acl:
    who: str
    roleid: str
    propagate: bool


@dataclass
class _Token:
    secret: str
    privsep: bool


def normalize_path(path: str) -> str:
    """AccessControl::normalize_path: collapse slashes, drop the trailing one."""
    path = "/" + "/".join(part for part in path.split("/") if part)
    return path


def _normal(path: str) -> str:
    """normalize_path, skipped for the usual already-normal path."""
    if "//" in path or not path.startswith("/") or (path.endswith("/") and path != "/"):
        return normalize_path(path)
    return path


class AccessControl:
    """The access-control state of one simulated cluster."""

    def __init__(
        self,
        version: str,
        pool_of: Callable[[int], str | None],
        pool_members: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        self.version = version
        self.pool_of = pool_of
        self.pool_members = pool_members
        self.privileges = load_schema(version).privileges()
        self.roles: dict[str, frozenset[str]] = builtin_roles(self.privileges)
        self.users: set[str] = {ROOT}
        self.accounts: dict[str, Account] = {ROOT: Account(ROOT)}
        self.groups: dict[str, Group] = {}
        self.tickets = TicketAuthority()
        self._tokens: dict[str, _Token] = {}
        self._acls: dict[str, list[_Acl]] = {}
        self._cache: dict[tuple[str, str | None, str, str | None], dict[str, int]] = {}
        self._verified: dict[str, Principal] = {}  # Authorization header -> its principal

    def _invalidate(self) -> None:
        """Forget cached privileges and verified headers after any change."""
        self._cache.clear()
        self._verified.clear()

    def add_user(self, userid: str, password: str | None = None, **fields: object) -> Account:
        """Add (or update) a user; with a password it may log in with a ticket."""
        self._invalidate()
        self.users.add(userid)
        account = self.accounts.setdefault(userid, Account(userid))
        for name, value in fields.items():
            setattr(account, name, value)
        if password is not None:
            account.set_password(password)
        return account

    def add_group(self, groupid: str, members: Iterable[str], comment: str | None = None) -> None:
        """A group of user.cfg; the members must exist."""
        self._invalidate()
        group = self.groups.setdefault(groupid, Group(groupid, comment))
        for userid in members:
            group.users.add(userid)
            self.accounts[userid].groups.add(groupid)

    def add_token(self, tokenid: str, secret: str, privsep: bool) -> None:
        """Add `user@realm!name` (the user is created when missing)."""
        self._invalidate()
        match = _TOKENID_RE.match(tokenid)
        if not match:
            raise ValueError(f"invalid token id {tokenid!r}")
        self.users.add(match[1])
        self.accounts.setdefault(match[1], Account(match[1]))
        self._tokens[tokenid] = _Token(secret, privsep)

    def add_role(self, roleid: str, privs: Iterable[str]) -> None:
        """Define a custom role; a privilege unknown to this version is a ValueError."""
        self._invalidate()
        privset = frozenset(privs)
        unknown = sorted(privset - self.privileges)
        if unknown:
            raise ValueError(f"invalid privilege '{unknown[0]}'")
        self.roles[roleid] = privset

    def set_acl(self, path: str, who: str, roleid: str, propagate: bool = True) -> None:
        """Grant `roleid` on `path` to a userid or tokenid."""
        self._invalidate()
        if roleid not in self.roles:
            raise ValueError(f"role '{roleid}' does not exist")
        entries = self._acls.setdefault(normalize_path(path), [])
        entries[:] = [acl for acl in entries if (acl.who, acl.roleid) != (who, roleid)]
        entries.append(_Acl(who, roleid, propagate))

    def tokens(self) -> dict[str, str]:
        """tokenid -> secret, for printing and for tests."""
        return {tokenid: token.secret for tokenid, token in self._tokens.items()}

    def tokens_of(self, userid: str) -> dict[str, dict[str, int]]:
        """A user's tokens as user.cfg has them: name -> {expire, privsep}."""
        prefix = f"{userid}!"
        return {
            tokenid[len(prefix) :]: {"expire": 0, "privsep": int(token.privsep)}
            for tokenid, token in self._tokens.items()
            if tokenid.startswith(prefix)
        }

    def acl_paths(self) -> list[str]:
        return list(self._acls)

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal of an `Authorization` header, or None when it does not verify."""
        return self.verify_token(header)[0]

    def verify_token(self, header: str | None) -> tuple[Principal | None, str]:
        """(principal, "") on success, else (None, PVE's raw error text).

        A header that verified once maps to the same principal until tokens change.
        """
        known = self._verified.get(header) if header else None
        if known is not None:
            return known, ""
        principal, error = self._verify(header)
        if principal is not None and header:
            self._verified[header] = principal
        return principal, error

    def _verify(self, header: str | None) -> tuple[Principal | None, str]:
        match = _TOKEN_HEADER_RE.search(header or "")
        if not match:
            return None, "No ticket"
        tokenid, sep, secret = unquote(match[1]).rpartition("=")
        if not sep:
            return None, "invalid token value!"
        parsed = _TOKENID_RE.match(tokenid)
        if not parsed:
            return None, "invalid token value!"
        userid, name = parsed[1], parsed[2]
        token = self._tokens.get(tokenid)
        if userid not in self.users or token is None:
            return None, f"no such token '{name}' for user '{userid}'"
        if token.secret != secret:
            return None, "invalid token value!"
        return Principal(self, userid, tokenid), ""

    def principal(self, userid: str, tokenid: str | None = None) -> Principal:
        """A principal without authentication (for the model's internal tasks and tests)."""
        return Principal(self, userid, tokenid)

    def _roles_at(self, who: str, path: str) -> dict[str, bool]:
        """roleid -> propagate for `who` at `path`; the deepest matching level wins."""
        roles: dict[str, bool] = {}
        parts = [part for part in path.split("/") if part]
        for depth in range(len(parts) + 1):
            node = "/" + "/".join(parts[:depth])
            final = depth == len(parts)
            found = {
                acl.roleid: acl.propagate
                for acl in self._acls.get(node, ())
                if acl.who == who and (final or acl.propagate)
            }
            if found:
                roles = found
        return roles

    def _privs_of(self, who: str, path: str) -> dict[str, int]:
        roles = self._roles_at(who, path)
        vm = _VM_PATH_RE.match(path)
        pool = self.pool_of(int(vm[1])) if vm else None
        if pool and "NoAccess" not in roles:
            for roleid in self._roles_at(who, f"/pool/{pool}"):
                roles.setdefault(roleid, False)
        if "NoAccess" in roles:
            return {}
        privs: dict[str, int] = {}
        for roleid, propagate in roles.items():
            for priv in self.roles.get(roleid, ()):
                privs[priv] = max(privs.get(priv, 0), int(propagate))
        return privs

    def privileges_of(self, userid: str, tokenid: str | None, path: str) -> dict[str, int]:
        """Effective privilege -> propagate flag of a user or token at `path` (read-only).

        Cached per (principal, path, pool of the VM) because /cluster/resources asks once
        per VM; every mutation of users, tokens, roles or ACLs clears the cache.
        """
        path = _normal(path)
        vm = _VM_PATH_RE.match(path) if path.startswith("/vms/") else None
        key = (userid, tokenid, path, self.pool_of(int(vm[1])) if vm else None)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._compute(userid, tokenid, path)
        return cached

    def _compute(self, userid: str, tokenid: str | None, path: str) -> dict[str, int]:
        if userid == ROOT and tokenid is None:
            return dict.fromkeys(sorted(self.privileges), 1)
        user_privs = (
            dict.fromkeys(sorted(self.privileges), 1)
            if userid == ROOT
            else self._privs_of(userid, path)
        )
        if tokenid is None:
            return user_privs
        token = self._tokens.get(tokenid)
        if token is None:
            return {}
        if not token.privsep:
            return user_privs
        token_privs = self._privs_of(tokenid, path)
        return {priv: flag for priv, flag in token_privs.items() if priv in user_privs}


class Principal:
    """An authenticated user or API token."""

    def __init__(self, access: AccessControl, userid: str, tokenid: str | None) -> None:
        self.access = access
        self.userid = userid
        self.tokenid = tokenid

    @property
    def name(self) -> str:
        """The id tasks are owned by: the full token id, else the userid."""
        return self.tokenid or self.userid

    def has(self, path: str, priv: str) -> bool:
        return priv in self.access.privileges_of(self.userid, self.tokenid, path)

    def check(self, path: str, privs: Iterable[str], any_: bool = False) -> None:
        """Raise PVE's 403 unless the privileges are held (one of them when `any_`)."""
        path = _normal(path)
        held = self.access.privileges_of(self.userid, self.tokenid, path)
        wanted = list(privs)
        if any_:
            if not any(priv in held for priv in wanted):
                raise permission_denied(f"{path}, {'|'.join(wanted)}")
            return
        for priv in wanted:
            if priv not in held:
                raise permission_denied(f"{path}, {priv}")

    def permissions(
        self, path: str | None = None, members: Iterable[int] = ()
    ) -> dict[str, dict[str, int]]:
        """What GET /access/permissions returns; `members` are the VMs in pools."""
        if path is not None:
            return {path: dict(self.access.privileges_of(self.userid, self.tokenid, path))}
        paths = set(DEFAULT_PATHS) | set(self.access.acl_paths())
        paths |= {f"/vms/{vmid}" for vmid in members}
        if self.access.pool_members is not None:
            paths |= {f"/vms/{vmid}" for vmid in self.access.pool_members()}
        result: dict[str, dict[str, int]] = {}
        for each in sorted(paths):
            privs = self.access.privileges_of(self.userid, self.tokenid, each)
            if privs:
                result[each] = dict(privs)
        return result


def permission_denied(what: str | None = None) -> PVEError:
    """RPCEnvironment::raise_perm_exc: 403 `Permission check failed (<what>)`."""
    return PVEError(403, f"Permission check failed ({what})" if what else "Permission check failed")
