"""VM config helpers: disks, network devices, smbios1, names and cloud-init addresses."""

from __future__ import annotations

import re
import uuid
from typing import Any

from openvle_pvesim.errors import PVEError, param_error

DISK_RE = re.compile(r"^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$")
NET_RE = re.compile(r"^net\d+$")
SMBIOS_VALUE_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
SMBIOS_STRING_KEYS = ("family", "manufacturer", "product", "serial", "sku", "version")
DNS_NAME_RE = re.compile(
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"
)
SIZE_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# Config keys whose values PVE returns as integers (booleans are 0/1).
INT_KEYS = frozenset(
    {"cores", "sockets", "vcpus", "template", "onboot", "protection", "numa", "acpi", "kvm"}
    | {"tablet", "localtime", "balloon", "cpuunits", "shares", "ciupgrade", "reboot", "freeze"}
)


def disk_keys(config: dict[str, Any]) -> list[str]:
    """Disk keys (not CD-ROMs), boot disk first in scsi/virtio/sata/ide order."""
    keys = [k for k in config if DISK_RE.match(k) and "media=cdrom" not in str(config[k])]
    order = {"scsi": 0, "virtio": 1, "sata": 2, "ide": 3}
    return sorted(keys, key=lambda k: (order.get(k.rstrip("0123456789"), 9), k))


def volume_keys(config: dict[str, Any]) -> list[str]:
    """Disk keys plus the cloud-init drive: everything that lives on a storage."""
    return [
        k
        for k in config
        if DISK_RE.match(k)
        and ("media=cdrom" not in str(config[k]) or "cloudinit" in str(config[k]))
    ]


def volid(value: str) -> str:
    """`ceph:base-9000-disk-0,size=32G` -> `ceph:base-9000-disk-0`."""
    return value.split(",", 1)[0]


def storage_of(value: str) -> str:
    return volid(value).split(":", 1)[0]


def parse_size(value: str) -> int:
    """The `size=` option of a drive string in bytes (0 when absent)."""
    for part in value.split(",")[1:]:
        if part.startswith("size="):
            raw = part[5:]
            unit = raw[-1].upper()
            if unit in SIZE_UNITS:
                return int(float(raw[:-1]) * SIZE_UNITS[unit])
            return int(raw)
    return 0


def format_gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"


def parse_props(value: str, default_key: str | None = None) -> dict[str, str]:
    """Parse a PVE property string `a=1,b=2` (a leading bare value goes to default_key)."""
    out: dict[str, str] = {}
    for part in value.split(","):
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
        elif default_key is not None:
            out[default_key] = part
    return out


def net_mac(value: str) -> str | None:
    """The MAC of a `virtio=BC:24:11:..,bridge=vmbr0` net device."""
    for k, v in parse_props(value).items():
        if k in ("virtio", "e1000", "rtl8139", "vmxnet3", "macaddr"):
            return v
    return None


def with_new_mac(value: str, mac: str) -> str:
    """Replace the MAC of a net device string."""
    parts = value.split(",")
    model = parts[0].split("=", 1)[0]
    return ",".join([f"{model}={mac}", *parts[1:]])


def net_bridge(value: str) -> tuple[str, str | None]:
    props = parse_props(value)
    return props.get("bridge", "vmbr0"), props.get("tag")


def agent_enabled(config: dict[str, Any]) -> bool:
    """`agent: 1` or `agent: enabled=1,...`."""
    raw = config.get("agent")
    if raw is None:
        return False
    return parse_props(str(raw), "enabled").get("enabled", "0") == "1"


def check_smbios1(value: str) -> None:
    """PVE's smbios1 format: string fields base64-charset only, 512 chars, valid uuid."""
    if len(value) > 512:
        raise param_error(smbios1="value may only be 512 characters long")
    for key, val in parse_props(value).items():
        if key in SMBIOS_STRING_KEYS and not SMBIOS_VALUE_RE.match(val):
            raise param_error(
                smbios1=f"invalid format - value does not match the regex pattern\n"
                f"smbios1: {key}: value does not match the regex pattern"
            )
        if key == "uuid":
            try:
                uuid.UUID(val)
            except ValueError:
                raise param_error(smbios1="invalid format - invalid uuid") from None
        if key not in (*SMBIOS_STRING_KEYS, "uuid", "base64"):
            raise param_error(smbios1=f"invalid format - property '{key}' not defined")


def smbios_with_uuid(value: str | None, new_uuid: str) -> str:
    """Set or replace the uuid of an smbios1 string (uuid first, as PVE writes it)."""
    props = {k: v for k, v in parse_props(value or "").items() if k != "uuid"}
    return ",".join(f"{k}={v}" for k, v in {"uuid": new_uuid, **props}.items())


def check_name(name: str) -> None:
    if not DNS_NAME_RE.match(name):
        raise param_error(name="invalid format - value does not look like a valid DNS name")


def static_ip(config: dict[str, Any]) -> tuple[str, int] | None:
    """The static IPv4 address and prefix from cloud-init `ipconfig0`, if any."""
    ip = parse_props(str(config.get("ipconfig0", ""))).get("ip")
    if not ip or ip == "dhcp" or "/" not in ip:
        return None
    addr, prefix = ip.split("/", 1)
    return addr, int(prefix)


def normalise(key: str, value: Any) -> Any:
    """Store a validated parameter the way PVE's config returns it."""
    if isinstance(value, bool):
        return int(value)
    if key in INT_KEYS:
        return int(value)
    if key == "tags":
        tags = sorted({t.lower() for t in re.split(r"[;, ]+", str(value)) if t})
        return ";".join(tags)
    return value if isinstance(value, int | float) else str(value)


def not_running(vmid: int) -> PVEError:
    return PVEError(500, f"VM {vmid} not running")
