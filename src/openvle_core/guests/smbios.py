"""SMBIOS type 1 (`smbios1`) metadata: who made the VM, for which event, and its identity.

PVE checks every string field against the base64 alphabet even when `base64=0`, so values
are sent base64-encoded with `base64=1`; the `uuid` PVE generated at clone time is kept
(it is never encoded), and the whole value must fit in 512 characters.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from openvle_core.guests.errors import SmbiosMetadataTooLong

MAX_LENGTH = 512
STRING_FIELDS = ("manufacturer", "product", "version", "serial", "sku", "family")
# Shortened first when the value would be too long; the serial (our identity) never is.
SHRINK_ORDER = ("product", "family", "manufacturer", "version")


@dataclass(frozen=True)
class SmbiosMetadata:
    """What OpenVLE writes: project, VM name, template id, VM UUID, event slug."""

    manufacturer: str
    product: str
    version: str
    serial: str
    family: str = ""


def parse_smbios1(value: str | None) -> dict[str, str]:
    """`smbios1` as a dict with string fields decoded when `base64=1`."""
    props: dict[str, str] = {}
    for part in (value or "").split(","):
        key, sep, val = part.partition("=")
        if sep:
            props[key.strip()] = val.strip()
    if props.get("base64") == "1":
        for key in STRING_FIELDS:
            if key in props:
                props[key] = _decode(props[key])
    return props


def _decode(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


def serial_of(value: str | None) -> str | None:
    """The (decoded) serial of an `smbios1` value, or None."""
    return parse_smbios1(value).get("serial") or None


def build_smbios1(current: str | None, meta: SmbiosMetadata) -> str:
    """The new `smbios1`: our fields base64-encoded, `base64=1`, the existing uuid kept."""
    uuid = parse_smbios1(current).get("uuid")
    fields = {
        "manufacturer": meta.manufacturer,
        "product": meta.product,
        "version": meta.version,
        "serial": meta.serial,
        "family": meta.family,
    }
    value = _render(uuid, fields)
    for key in SHRINK_ORDER:
        while len(value) > MAX_LENGTH and fields[key]:
            fields[key] = fields[key][: len(fields[key]) // 2]
            value = _render(uuid, fields)
    if len(value) > MAX_LENGTH:
        raise SmbiosMetadataTooLong(
            f"smbios1 is {len(value)} characters with every field of ours emptied (Proxmox "
            f"allows {MAX_LENGTH}): the VM's existing uuid {uuid!r} is too long to keep"
        )
    return value


def _render(uuid: str | None, fields: dict[str, str]) -> str:
    parts = [f"uuid={uuid}"] if uuid else []
    for key, text in fields.items():
        if text:
            parts.append(f"{key}={base64.b64encode(text.encode()).decode()}")
    parts.append("base64=1")
    return ",".join(parts)
