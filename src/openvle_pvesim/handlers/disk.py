"""PUT .../resize (`resize` task) and PUT .../unlink, as qemu-server API2/Qemu.pm has them.

Resize runs its checks in the worker under the config lock: `disk 'x' does not exist`,
`you can't resize a cdrom`, `shrinking disks is not supported`; `+SIZE` grows by SIZE,
`SIZE` sets it; the new size is written back into the drive's `size=`. Unlink removes the
listed drives; without `force` a disk volume is kept as `unusedN` (vmconfig_delete_or_
detach_drive), with `force` it is destroyed; it is update_vm with `delete` = idlist.
"""

from __future__ import annotations

import re

from openvle_pvesim.contract import Request, route
from openvle_pvesim.disks import detach, drive_options, format_size, print_drive
from openvle_pvesim.handlers.common import check_lock, req_vm, root_only_skiplock, task_user
from openvle_pvesim.tasks import TaskContext, TaskError
from openvle_pvesim.vmconfig import SIZE_UNITS, parse_size
from openvle_pvesim.vmops import locked_worker

SIZE_RE = re.compile(r"^(\+)?(\d+(?:\.\d+)?)([KMGT])?$")
RESIZE_SECONDS = 0.5


def new_size(current: int, text: str) -> int:
    match = SIZE_RE.match(text)
    if match is None:
        raise TaskError("internal error")
    size = float(match[2]) * SIZE_UNITS.get(match[3] or "", 1)
    return int(size + (current if match[1] else 0))


@route("PUT", "/nodes/{node}/qemu/{vmid}/resize")
async def resize(req: Request) -> str:
    cluster = req.cluster
    vm = req_vm(req)
    skiplock = root_only_skiplock(req)
    disk, wanted = str(req.params["disk"]), str(req.params["size"])
    digest = req.params.get("digest")

    async def body(ctx: TaskContext) -> None:
        if digest is not None and digest != vm.digest():
            raise TaskError("checksum mismatch (file change by other user?)")
        if not skiplock and "lock" in vm.config:
            raise TaskError(f"VM is locked ({vm.config['lock']})")
        value = vm.config.get(disk)
        if value is None:
            raise TaskError(f"disk '{disk}' does not exist")
        if "media=cdrom" in str(value):
            raise TaskError("you can't resize a cdrom")
        size = parse_size(str(value))
        target = new_size(size, wanted)
        if target < size:
            raise TaskError("shrinking disks is not supported")
        await ctx.sleep(RESIZE_SECONDS)
        file, options = drive_options(str(value))
        options["size"] = format_size(target)
        vm.config[disk] = print_drive(file, options)
        cluster.usage.update(vm)

    worker = locked_worker(cluster, vm.vmid, "resize", body)
    return await cluster.tasks.spawn(
        vm.node, "resize", str(vm.vmid), task_user(req.principal), worker
    )


@route("PUT", "/nodes/{node}/qemu/{vmid}/unlink")
async def unlink(req: Request) -> None:
    vm = req_vm(req)
    check_lock(vm)
    force = bool(req.params.get("force"))
    for key in (k for k in re.split(r"[,;\s]+", str(req.params["idlist"])) if k):
        detach(vm.config, key, force)  # API2/Qemu.pm: `delete => idlist` of update_vm
    req.cluster.usage.update(vm)
