"""GET/POST/PUT /nodes/{node}/qemu/{vmid}/config: digest, locks, per-option privileges."""

from __future__ import annotations

import re
import uuid
from typing import Any

from openvle_pvesim.cluster import VM, Cluster
from openvle_pvesim.contract import Request, route
from openvle_pvesim.disks import NEW_DISK_RE, detach, drive_options, set_drive
from openvle_pvesim.errors import PVEError, param_error
from openvle_pvesim.handlers.common import check_lock, req_vm, root_only_skiplock, task_user
from openvle_pvesim.tasks import TaskContext
from openvle_pvesim.vmconfig import (
    DISK_RE,
    NET_RE,
    check_name,
    check_smbios1,
    net_bridge,
    net_mac,
    normalise,
    parse_props,
    smbios_with_uuid,
    with_new_mac,
)

CONTROL_PARAMS = frozenset(
    {"node", "vmid", "delete", "digest", "revert", "skiplock", "force", "background_delay"}
)
CPU = {"cores", "sockets", "cpu", "cpulimit", "cpuunits", "numa", "vcpus", "smp", "affinity"}
MEMORY = {"memory", "balloon", "shares", "allow-ksm"}
HWTYPE = {"acpi", "hotplug", "kvm", "machine", "scsihw", "smbios1", "tablet", "vga", "watchdog"}
HWTYPE |= {"audio0", "rng0"}
OPTIONS = {"agent", "autostart", "bios", "description", "keyboard", "localtime", "name"}
OPTIONS |= {"onboot", "ostype", "protection", "reboot", "startdate", "startup", "tdf", "template"}
OPTIONS |= {"tags", "migrate_downtime", "migrate_speed", "hookscript"}
CLOUDINIT = {"cicustom", "cipassword", "citype", "ciuser", "ciupgrade", "nameserver"}
CLOUDINIT |= {"searchdomain", "sshkeys"}
DISK = {"boot", "bootdisk", "vmstatestorage", "efidisk0", "tpmstate0"}
CONFIG_SECONDS = 0.5


def option_privs(key: str) -> tuple[list[str], bool]:
    """The privileges PVE's `$check_vm_modify_config_perm` wants for a key (any-of flag)."""
    if key in CPU:
        return ["VM.Config.CPU"], False
    if key in MEMORY:
        return ["VM.Config.Memory"], False
    if key in HWTYPE:
        return ["VM.Config.HWType"], False
    if key in OPTIONS or key.startswith("meta"):
        return ["VM.Config.Options"], False
    if NET_RE.match(key):
        return ["VM.Config.Network"], False
    if key in CLOUDINIT or re.match(r"^ipconfig\d+$", key):
        return ["VM.Config.Cloudinit", "VM.Config.Network"], True
    if key in DISK or DISK_RE.match(key) or key.startswith("unused"):
        return ["VM.Config.Disk"], False
    raise PVEError(403, f"only root can set '{key}' config")


def check_perms(req: Request, keys: list[str], pool: str | None = None) -> None:
    """Per-option privileges on /vms/{vmid}, or on /pool/{pool} when creating into one."""
    path = f"/vms/{req.params['vmid']}"
    principal = req.principal
    for key in keys:
        if principal.userid == "root@pam" and not principal.tokenid:
            return
        privs, any_ = option_privs(key)
        in_pool = pool is not None and any(principal.has(f"/pool/{pool}", p) for p in privs)
        if not in_pool:
            principal.check(path, privs, any_=any_)
        if NET_RE.match(key):
            bridge, tag = net_bridge(str(req.params.get(key, "")))
            zone = f"/sdn/zones/localnetwork/{bridge}" + (f"/{tag}" if tag else "")
            req.principal.check(zone, ["SDN.Use"])


def split_changes(req: Request) -> tuple[dict[str, Any], list[str]]:
    """(values to set, keys to delete) after PVE's synchronous validation."""
    changes = {k: v for k, v in req.params.items() if k not in CONTROL_PARAMS}
    deletes = [k for k in re.split(r"[,;\s]+", str(req.params.get("delete", ""))) if k]
    if req.params.get("force") and not deletes:
        raise param_error(force="missing property required by 'delete'")
    for key in deletes:
        if key in changes:
            raise param_error(delete=f"you can't use '-{key}' and '-delete {key}' at the same time")
    if "name" in changes:
        check_name(str(changes["name"]))
    if "smbios1" in changes:
        check_smbios1(str(changes["smbios1"]))
    return changes, deletes


def precheck(req: Request, vm: VM) -> tuple[dict[str, Any], list[str]]:
    """Checks before forking: digest, lock, formats and per-option privileges."""
    skiplock = root_only_skiplock(req)
    digest = req.params.get("digest")
    if digest is not None and digest != vm.digest():
        raise PVEError(500, "checksum mismatch (file change by other user?)")
    check_lock(vm, skiplock)
    changes, deletes = split_changes(req)
    check_perms(req, [*changes, *deletes])
    check_storage_access(req, changes)
    return changes, deletes


def apply_changes(
    cluster: Cluster, vm: VM, changes: dict[str, Any], deletes: list[str], force: bool = False
) -> list[str]:
    """Write the update and return its task log lines.

    Drives are allocated or detached as qemu-server does (`disks.set_drive`, `detach`);
    new net devices without a MAC get a generated one.
    """
    log: list[str] = []
    for key in deletes:
        if DISK_RE.match(key) or key.startswith("unused"):
            detach(vm.config, key, force)
        else:
            vm.config.pop(key, None)
    for key, value in changes.items():
        if DISK_RE.match(key):
            log.extend(set_drive(vm.config, vm.vmid, key, str(value)))
            continue
        stored = normalise(key, value)
        if NET_RE.match(key) and net_mac(str(stored)) is None:
            stored = with_new_mac(str(stored), cluster.new_mac())
        if key == "smbios1" and "uuid=" not in str(stored):
            old = parse_props(str(vm.config.get("smbios1", ""))).get("uuid")
            stored = smbios_with_uuid(str(stored), old or str(uuid.uuid4()))
        vm.config[key] = stored
    cluster.usage.update(vm)  # drives may have come or gone
    return log


def check_storage_access(req: Request, changes: dict[str, Any]) -> None:
    """Datastore.AllocateSpace on each storage a new volume goes to (API2/Qemu.pm
    `$check_storage_access`)."""
    for key, value in changes.items():
        file = drive_options(str(value))[0]
        if DISK_RE.match(key) and (NEW_DISK_RE.match(file) or file.endswith(":cloudinit")):
            sid = file.split(":", 1)[0]
            req.principal.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])


@route("GET", "/nodes/{node}/qemu/{vmid}/config")
async def get_config(req: Request) -> dict[str, Any]:
    if req.params.get("current") and req.params.get("snapshot"):
        raise param_error(snapshot="'snapshot' and 'current' are mutually exclusive")
    vm = req_vm(req)
    config = dict(vm.config)
    if "cipassword" in config:
        config["cipassword"] = "**********"
    config["digest"] = vm.digest()
    return config


@route("PUT", "/nodes/{node}/qemu/{vmid}/config")
async def put_config(req: Request) -> None:
    vm = req_vm(req)
    changes, deletes = precheck(req, vm)
    apply_changes(req.cluster, vm, changes, deletes, bool(req.params.get("force")))


@route("POST", "/nodes/{node}/qemu/{vmid}/config")
async def post_config(req: Request) -> str | None:
    """Async update: a `qmconfig` task (or null when it ends within background_delay)."""
    cluster = req.cluster
    vm = req_vm(req)
    changes, deletes = precheck(req, vm)
    force = bool(req.params.get("force"))

    async def worker(ctx: TaskContext) -> None:
        await ctx.sleep(CONFIG_SECONDS)
        for line in apply_changes(cluster, vm, changes, deletes, force):
            ctx.log(line)

    upid = await cluster.tasks.spawn(
        vm.node, "qmconfig", str(vm.vmid), task_user(req.principal), worker
    )
    delay = req.params.get("background_delay")
    if delay is None:
        return upid
    task = cluster.tasks.tasks[upid]
    if float(delay) >= CONFIG_SECONDS:
        await cluster.tasks.wait(upid)
    if not task.done.is_set():
        return upid
    if task.exitstatus != "OK":
        raise PVEError(500, f"failed to update VM {vm.vmid}: {task.exitstatus}")
    return None
