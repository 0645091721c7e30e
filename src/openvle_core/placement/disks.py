"""What a template asks of a node, read from its config: its memory, which storages hold
its disks and how big they are (what a full clone copies). CD-ROM images are not copied;
the cloud-init drive is."""

from __future__ import annotations

import re
from collections.abc import Iterator

from openvle_core.proxmox.models import VmConfig

DISK_KEY = re.compile(r"^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$")
SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)")
UNIT_MB = {"": 1 / 1024**2, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}


def copied_disks(config: VmConfig) -> Iterator[str]:
    """The config values (`STORAGE:VOLUME,size=...`) of the disks a clone copies."""
    for key, value in (config.model_extra or {}).items():
        text = str(value)
        if not DISK_KEY.match(key) or text == "none" or ":" not in text:
            continue
        if "media=cdrom" in text and "cloudinit" not in text:
            continue
        yield text


def storages_of(config: VmConfig) -> set[str]:
    """Storage ids of the disks a clone copies."""
    return {text.split(":", 1)[0] for text in copied_disks(config)}


def disk_mb_of(config: VmConfig) -> int:
    """The copied disks' sizes in all, in MiB, rounded up (`size=8G` of each)."""
    total = 0.0
    for text in copied_disks(config):
        match = SIZE.search(text)
        if match:
            total += float(match.group(1)) * UNIT_MB[match.group(2)]
    return int(-(-total // 1))


def memory_mb_of(config: VmConfig) -> int | None:
    """The configured memory in MiB (`memory: 4096` or `memory: current=4096,...`)."""
    text = (config.memory or "").removeprefix("current=").split(",", 1)[0]
    return int(text) if text.isdigit() else None
