"""Volume allocation for drive options, as qemu-server's `create_disks` does it.

`scsi1=local-lvm:4` (Drive.pm `$NEW_DISK_RE`: `[STORAGE:]SIZE_GIB`) allocates the lowest
free `vm-<vmid>-disk-<n>` on that storage (pve-storage `find_free_diskname`, which counts
`vm-` and `base-` names) and stores `local-lvm:vm-<vmid>-disk-<n>,size=4G`; a template
gets a `base-` volume. `STORAGE:cloudinit` creates `STORAGE:vm-<vmid>-cloudinit,media=cdrom`.
The task log gets `scsi1: successfully created disk '...'` (qemu-server API2/Qemu.pm). A
replaced or deleted disk becomes `unusedN` (QemuServer.pm `vmconfig_register_unused_drive`):
a cloud-init volume is freed instead, a CD-ROM just dropped.
"""

from __future__ import annotations

import re
from typing import Any

from openvle_pvesim.vmconfig import DISK_RE, parse_props, volid

NEW_DISK_RE = re.compile(r"^(?:([^/:\s]+):)?(\d+(?:\.\d+)?)$")
UNUSED_RE = re.compile(r"^unused(\d+)$")
GIB = 1024**3


def format_size(size: int) -> str:
    """PVE::JSONSchema `format_size`: the largest unit that divides evenly (`32G`, `512M`)."""
    for unit, factor in (("T", 1024**4), ("G", GIB), ("M", 1024**2), ("K", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def print_drive(file: str, options: dict[str, str]) -> str:
    """`file,key=value,...` with the keys sorted, as `print_property_string` writes them."""
    return ",".join([file, *(f"{k}={v}" for k, v in sorted(options.items()))])


def drive_options(value: str) -> tuple[str, dict[str, str]]:
    """(file, other options) of a drive string (`file=` may be spelled out)."""
    props = parse_props(value, "file")
    return props.pop("file", ""), props


def disk_numbers(config: dict[str, Any], vmid: int, sid: str) -> set[int]:
    """Disk numbers the VM's volumes on `sid` already use (drives, unused, linked bases)."""
    pattern = re.compile(rf"[:/](?:vm|base)-{vmid}-disk-(\d+)")
    used: set[int] = set()
    for value in config.values():
        vol = volid(str(value))
        if vol.split(":", 1)[0] == sid and (match := pattern.search(vol)):
            used.add(int(match[1]))
    return used


def allocate(config: dict[str, Any], vmid: int, key: str, value: str) -> str | None:
    """The drive string for a new-volume request in `value`, or None if it names none."""
    file, options = drive_options(value)
    sid = file.split(":", 1)[0]
    if file.endswith(":cloudinit"):
        return print_drive(f"{sid}:vm-{vmid}-cloudinit", {**options, "media": "cdrom"})
    match = NEW_DISK_RE.match(file)
    if not DISK_RE.match(key) or match is None or match[1] is None:
        return None
    used = disk_numbers(config, vmid, sid)
    number = next(n for n in range(len(used) + 1) if n not in used)
    prefix = "base" if config.get("template") else "vm"
    size = int(float(match[2]) * GIB)
    return print_drive(
        f"{sid}:{prefix}-{vmid}-disk-{number}", {**options, "size": format_size(size)}
    )


def add_unused(config: dict[str, Any], volume: str) -> str:
    """Register `volume` as the lowest free `unusedN` (AbstractConfig `add_unused_volume`)."""
    for value in config.values():
        if str(value) == volume:
            return ""
    taken = {int(m[1]) for k in config if (m := UNUSED_RE.match(k))}
    key = f"unused{next(n for n in range(len(taken) + 1) if n not in taken)}"
    config[key] = volume
    return key


def detach(config: dict[str, Any], key: str, force: bool = False) -> None:
    """Take drive `key` out of the config; its volume becomes unused unless destroyed."""
    value = str(config.pop(key, ""))
    if not value or "media=cdrom" in value or force or UNUSED_RE.match(key):
        return  # a CD-ROM or cloud-init drive, an unused volume, or `force`: gone
    if ":" in volid(value):
        add_unused(config, volid(value))


def set_drive(config: dict[str, Any], vmid: int, key: str, value: str) -> list[str]:
    """Set drive `key`, allocating a requested volume; returns the task log lines."""
    new = allocate(config, vmid, key, value)
    old = config.get(key)
    if old is not None and volid(str(old)) != volid(new or value):
        detach(config, key)
    config[key] = new or value
    return [f"{key}: successfully created disk '{new}'"] if new else []
