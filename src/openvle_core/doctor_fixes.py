"""The commands `openvle doctor` suggests for each failure.

Privileges are granted through one custom role per ACL path, as the "Proxmox setup"
guide (docs/how-to/proxmox-setup.md) creates them: `OpenVLE-VMs` on the pool,
`OpenVLE-Storage` on /storage, `OpenVLE-SDN` on /sdn/zones, `OpenVLE-Nodes` on /nodes
and `OpenVLE-HA` on / (not propagated). With privilege separation the token's rights
are the intersection of the user's and the token's, so every ACL names both.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from openvle_core.settings import ProxmoxSettings

DATABASE = (
    "check DATABASE_URL (mysql+asyncmy://USER:PASSWORD@HOST:3306/DB or sqlite+aiosqlite:///PATH)",
    "openvle migrate",
)
REDIS = ("check REDIS_URL (redis://HOST:6379/0) and that Redis runs: redis-cli -u URL ping",)
MONGODB = ("check MONGODB_URL (mongodb://USER:PASSWORD@HOST:27017/) and that MongoDB runs",)
AGENT = (
    "install and enable qemu-guest-agent in the template, and set the VM option: "
    "qm set VMID --agent enabled=1",
)


def role_for(path: str) -> tuple[str, str, bool]:
    """(role, ACL path to grant it on, propagate) for a path a requirement names."""
    if path.startswith(("/pool/", "/vms")):
        return "OpenVLE-VMs", path if path.startswith("/pool/") else "", True
    if path.startswith("/storage"):
        return "OpenVLE-Storage", path, True
    if path.startswith("/sdn"):
        return "OpenVLE-SDN", "/sdn/zones", True
    if path.startswith("/nodes"):
        return "OpenVLE-Nodes", "/nodes", True
    return "OpenVLE-HA", path or "/", False


def grants(pairs: Iterable[tuple[str, tuple[str, ...]]], pve: ProxmoxSettings) -> tuple[str, ...]:
    """`pveum` commands that give the token each missing privilege (first of any-of)."""
    privs_by_role: dict[str, list[str]] = {}
    acls: dict[tuple[str, str], bool] = {}
    for path, privileges in pairs:
        role, acl_path, propagate = role_for(path)
        acl_path = acl_path or f"/pool/{pve.vms_pool}"
        if privileges and privileges[0] not in privs_by_role.setdefault(role, []):
            privs_by_role[role].append(privileges[0])
        acls[(acl_path, role)] = propagate
    commands = [
        f"pveum role modify {role} --append 1 --privs {shlex.quote(','.join(privs))}"
        for role, privs in privs_by_role.items()
        if privs
    ]
    who = f"--users {shlex.quote(pve.user)} --tokens {shlex.quote(pve.token_id)}"
    for (acl_path, role), propagate in acls.items():
        flag = "" if propagate else " --propagate 0"
        commands.append(f"pveum acl modify {acl_path} --roles {role} {who}{flag}")
    return tuple(commands)


def pool(name: str) -> tuple[str, ...]:
    """Create the pool OpenVLE owns."""
    return (f"pveum pool add {shlex.quote(name)} --comment 'OpenVLE VMs and templates'",)


def token(user: str, token_name: str) -> tuple[str, ...]:
    """Create the user and a privilege-separated token, then configure its secret."""
    return (
        f"pveum user add {shlex.quote(user)} --comment 'OpenVLE service'",
        f"pveum user token add {shlex.quote(user)} {shlex.quote(token_name)} --privsep 1",
        "set PVE_USER, PVE_TOKEN_NAME and PVE_TOKEN_VALUE (the secret the command printed)",
    )


def tls(hostname: str) -> tuple[str, ...]:
    """Trust the cluster's CA (compare the fingerprint with the node's first)."""
    host = hostname.rpartition(":")[0] or hostname
    return (
        "on a node: pvenode cert info   (the fingerprint above must match)",
        f"scp root@{host}:/etc/pve/pve-root-ca.pem /etc/openvle/pve-root-ca.pem",
        "PVE_VERIFY_SSL=/etc/openvle/pve-root-ca.pem",
    )


def unreachable(hostname: str) -> tuple[str, ...]:
    """Point PVE_HOSTNAME at a node's API."""
    host, _, port = hostname.rpartition(":")
    return (
        f"check PVE_HOSTNAME ({hostname}) and that port {port} is open: "
        f"curl -k https://{host}:{port}/api2/json/version",
    )


DEDICATED = (
    "pveum user add openvle@pve --comment 'OpenVLE service'",
    "pveum user token add openvle@pve openvle --privsep 1   (then grant it the roles of the "
    "Proxmox setup guide, and set PVE_USER, PVE_TOKEN_NAME and PVE_TOKEN_VALUE)",
)


def narrow(paths: Iterable[str], pve: ProxmoxSettings) -> tuple[str, ...]:
    """Take away what the token holds on `paths` (outside its pool).

    The roles granting it are not visible to the token itself, so the first command
    lists them. root@pam holds every privilege whatever the ACLs say: its tokens are
    replaced by a dedicated user and privilege-separated token, as the setup guide does
    (also the way out when the user needs those rights for other work).
    """
    if pve.user == "root@pam":
        return ("stop using a root@pam token (it holds every privilege):", *DEDICATED)
    user, token_id = shlex.quote(pve.user), shlex.quote(pve.token_id)
    listing = (
        f"pveum acl list   (find the roles that give {pve.user} or {pve.token_id} "
        "the paths above, directly or through a group)"
    )
    deletes = [
        f"pveum acl delete {shlex.quote(path)} --roles ROLE --users {user} --tokens {token_id}"
        for path in paths
    ]
    return (listing, *deletes, f"or, if {pve.user} needs those rights elsewhere:", *DEDICATED)
