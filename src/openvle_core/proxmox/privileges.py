"""What the token must hold, per feature and PVE version, and what it is missing.

Privilege names differ by version: the guest agent needs `VM.Monitor` on PVE 8 and
`VM.GuestAgent.Audit` (or `.Unrestricted`) on PVE 9, where VM.Monitor no longer exists.
Requirements follow the schema's `permissions` of the calls each feature makes.

`beyond_pool` finds the opposite: what the token may see or change outside its pool
beyond what the "Proxmox setup" guide grants there (storage space, SDN bridges, node
status, and HA on `/` without propagation). A token with more reaches other teams' VMs
or the cluster's configuration: a mistake in OpenVLE could then touch them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from openvle_core.proxmox.models import ExcessPrivilege, MissingPrivilege

Requirement = tuple[str, tuple[str, ...]]
"""(ACL path, privileges of which any one suffices)."""

AGENT_PRIVS_SINCE_9 = ("VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted")
AGENT_PRIVS_BEFORE_9 = ("VM.Monitor",)
_CORE_VM_PRIVS = (
    "VM.Audit",
    "VM.Clone",
    "VM.Allocate",
    "VM.PowerMgmt",
    "VM.Config.Options",
    "VM.Config.HWType",
    "VM.Config.CPU",
    "VM.Config.Memory",
    "Pool.Audit",
)


def agent_privileges(release: tuple[int, int]) -> tuple[str, ...]:
    """The privileges that allow reading from the guest agent on this version."""
    return AGENT_PRIVS_SINCE_9 if release >= (9, 0) else AGENT_PRIVS_BEFORE_9


def requirements(
    release: tuple[int, int], pool: str, storages: Iterable[str]
) -> dict[str, list[Requirement]]:
    """Per feature, the (path, any-of privileges) pairs the calls need.

    VM privileges are checked on `/pool/<pool>` (what a pool-scoped ACL grants); clone
    disks need Datastore.AllocateSpace on each storage of the pool (or `/storage`), NICs
    SDN.Use on the local zone, and placement Sys.Audit on `/nodes`.
    """
    pool_path = f"/pool/{pool}"
    storage_paths = [f"/storage/{sid}" for sid in storages] or ["/storage"]
    core: list[Requirement] = [(pool_path, (priv,)) for priv in _CORE_VM_PRIVS]
    core += [(path, ("Datastore.AllocateSpace",)) for path in storage_paths]
    core += [
        ("/sdn/zones/localnetwork", ("SDN.Use",)),  # clones attach NICs to local bridges
        ("/nodes", ("Sys.Audit",)),  # node status for placement
    ]
    return {
        "core": core,
        "cloudinit": [(pool_path, ("VM.Config.Cloudinit", "VM.Config.Network"))],
        "ha": [("/", ("Sys.Audit",)), ("/", ("Sys.Console",))],
        "migration": [(pool_path, ("VM.Migrate",))],
        "guest_agent": [(pool_path, agent_privileges(release))],
    }


def effective(permissions: Mapping[str, Mapping[str, bool]], path: str) -> set[str]:
    """Privileges held on `path`: its own entry, else the nearest ancestor's propagated ones."""
    if path in permissions:
        return set(permissions[path])
    parent = path
    while parent not in {"", "/"}:
        parent = parent.rsplit("/", 1)[0] or "/"
        if parent in permissions:
            return {priv for priv, propagate in permissions[parent].items() if propagate}
    return set()


def missing(
    permissions: Mapping[str, Mapping[str, bool]], needs: dict[str, list[Requirement]]
) -> dict[str, list[MissingPrivilege]]:
    """Per feature, the requirements none of whose privileges the token holds."""
    report: dict[str, list[MissingPrivilege]] = {}
    for feature, reqs in needs.items():
        report[feature] = [
            MissingPrivilege(path=path, privileges=privs)
            for path, privs in reqs
            if not effective(permissions, path) & set(privs)
        ]
    return report


# What the setup guide grants outside the pool: path (and below) -> privileges allowed.
OUTSIDE_POOL = {
    "/storage": frozenset({"Datastore.AllocateSpace", "Datastore.Audit"}),
    "/sdn": frozenset({"SDN.Use"}),
    "/nodes": frozenset({"Sys.Audit"}),
}
ON_ROOT = frozenset({"Sys.Audit", "Sys.Console"})  # on `/` itself, never propagated (HA)


def beyond_pool(
    permissions: Mapping[str, Mapping[str, bool]], pool: str, members: Collection[int]
) -> list[ExcessPrivilege]:
    """Privileges held outside `/pool/<pool>` and its VMs (`members`) beyond the guide's.

    A privilege propagated from a path reported already is not repeated below it (`/`
    with Administrator propagated is one entry, not one per path).
    """
    found: list[ExcessPrivilege] = []
    for path in sorted(permissions, key=lambda p: (p.count("/"), p)):
        excess = _excess(path, permissions[path], pool, members)
        excess -= {
            priv
            for above in found
            if above.path != path and _below(path, above.path)
            for priv in above.privileges
            if permissions[above.path][priv]
        }
        if excess:
            found.append(ExcessPrivilege(path=path, privileges=tuple(sorted(excess))))
    return found


def _excess(path: str, held: Mapping[str, bool], pool: str, members: Collection[int]) -> set[str]:
    """The privileges held on `path` that OpenVLE's setup does not grant there."""
    vm = path.removeprefix("/vms/")
    if _below(path, f"/pool/{pool}") or (vm.isdigit() and int(vm) in members):
        return set()
    if path == "/":
        return {priv for priv, propagate in held.items() if propagate or priv not in ON_ROOT}
    for top, allowed in OUTSIDE_POOL.items():
        if _below(path, top):
            return set(held) - allowed
    return set(held)


def _below(path: str, top: str) -> bool:
    """True if `path` is `top` or lies under it."""
    return top == "/" or path == top or path.startswith(top.rstrip("/") + "/")
