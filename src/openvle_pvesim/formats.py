"""PVE's JSON-schema `format` verifiers and property-string parsing (PVE::JSONSchema).

Only the formats the simulated endpoints use are implemented; an unknown named format
is accepted, as the simulator must not refuse what real PVE would take. Error texts are
PVE's, each ending in a newline as `die "...\\n"` produces them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

_DNS_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"
_DNS_RE = re.compile(rf"^({_DNS_LABEL}\.)*{_DNS_LABEL}$")
_NODE_RE = re.compile(rf"^{_DNS_LABEL}$")
_VMID_RE = re.compile(r"^[1-9][0-9]{2,8}$")
_CONFIGID_RE = re.compile(r"^[a-z][a-z0-9_]+$", re.IGNORECASE)
_STORAGE_RE = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)
_POOL_PART_RE = re.compile(r"^[A-Za-z0-9.\-_]+$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_URLENC_RE = re.compile(r"^[-%a-zA-Z0-9_.!~*'()]*$")
_TAG_RE = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.IGNORECASE)
_BRIDGE_RE = re.compile(r"^[-_.\w\d]+$")
_B64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_UUID_RE = re.compile(r"^[a-fA-F0-9]{8}(-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}$")
_LIST_SPLIT = re.compile(r"[,;\s\0]+")


class FormatError(Exception):
    """A format check failed; `errors` carries nested property-string errors."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}

    def text(self) -> str:
        """The message as PVE's exception stringifies it (nested errors appended)."""
        out = self.message
        for key, msg in self.errors.items():
            out += f"{key}: {msg}\n"
        return out


def _check(regex: re.Pattern[str], message: str) -> Callable[[str], None]:
    def verify(value: str) -> None:
        if not regex.match(value):
            raise FormatError(message.replace("{v}", value))

    return verify


def _verify_ip(kind: str) -> Callable[[str], None]:
    def verify(value: str) -> None:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            addr = None
        if addr is None or (kind == "IPv4" and addr.version != 4):
            raise FormatError(f"value does not look like a valid {kind} address\n")
        if kind == "IPv6" and addr.version != 6:
            raise FormatError(f"value does not look like a valid {kind} address\n")

    return verify


def _verify_cidr(version: int) -> Callable[[str], None]:
    label = f"IPv{version}"

    def verify(value: str) -> None:
        try:
            iface = ipaddress.ip_interface(value)
        except ValueError:
            iface = None
        lo, hi = (8, 32) if version == 4 else (8, 128)
        if iface is None or iface.version != version or "/" not in value:
            raise FormatError(f"value does not look like a valid {label} CIDR network\n")
        if not lo <= iface.network.prefixlen <= hi:
            raise FormatError(f"value does not look like a valid {label} CIDR network\n")

    return verify


def _verify_poolid(value: str) -> None:
    parts = value.split("/")
    if len(parts) > 3:
        raise FormatError(f"pool ID '{value}' nested too deeply (max levels = 3)\n")
    if not all(_POOL_PART_RE.match(part) for part in parts):
        raise FormatError(f"invalid pool ID '{value}'\n")


def _verify_address(value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _DNS_RE.match(value):
            raise FormatError(f"value does not look like a valid address: {value}\n") from None


def _verify_ipconfig_ip(value: str) -> None:
    if value != "dhcp":
        _verify_cidr(4)(value)


def _verify_ipconfig_ip6(value: str) -> None:
    if value not in {"dhcp", "auto"}:
        _verify_cidr(6)(value)


NAMED: dict[str, Callable[[str], None]] = {
    "pve-vmid": _check(_VMID_RE, "value does not look like a valid VM ID\n"),
    "pve-node": _check(_NODE_RE, "value does not look like a valid node name\n"),
    "dns-name": _check(_DNS_RE, "value does not look like a valid DNS name\n"),
    "pve-configid": _check(_CONFIGID_RE, "invalid configuration ID '{v}'\n"),
    "pve-storage-id": _check(_STORAGE_RE, "storage ID '{v}' contains illegal characters\n"),
    "pve-poolid": _verify_poolid,
    "mac-addr": _check(_MAC_RE, "value does not look like a valid MAC address\n"),
    "urlencoded": _check(_URLENC_RE, "invalid urlencoded string: {v}\n"),
    "pve-tag": _check(_TAG_RE, "invalid tag '{v}'\n"),
    "pve-bridge-id": _check(_BRIDGE_RE, "invalid bridge ID '{v}'\n"),
    "ipv4": _verify_ip("IPv4"),
    "ipv6": _verify_ip("IPv6"),
    "ip": _verify_ip("IP"),
    "address": _verify_address,
    "CIDRv4": _verify_cidr(4),
    "CIDRv6": _verify_cidr(6),
}


def _b64_field() -> dict[str, Any]:
    return {"type": "string", "optional": 1, "pattern": _B64_RE.pattern[1:-1]}


# Property-string formats that the schema names but does not spell out (qemu-server).
PROPERTY_FORMATS: dict[str, dict[str, Any]] = {
    "pve-qm-smbios1": {
        "base64": {"type": "boolean", "optional": 1},
        "family": _b64_field(),
        "manufacturer": _b64_field(),
        "product": _b64_field(),
        "serial": _b64_field(),
        "sku": _b64_field(),
        "version": _b64_field(),
        "uuid": {"type": "string", "optional": 1, "pattern": _UUID_RE.pattern[1:-1]},
    },
    "pve-qm-ipconfig": {
        "ip": {"type": "string", "optional": 1, "format": "pve-ipconfig-ip"},
        "gw": {"type": "string", "optional": 1, "format": "ipv4"},
        "ip6": {"type": "string", "optional": 1, "format": "pve-ipconfig-ip6"},
        "gw6": {"type": "string", "optional": 1, "format": "ipv6"},
    },
}
NAMED["pve-ipconfig-ip"] = _verify_ipconfig_ip
NAMED["pve-ipconfig-ip6"] = _verify_ipconfig_ip6


def split_list(value: str) -> list[str]:
    """PVE::Tools::split_list: items separated by commas, semicolons, spaces or NULs."""
    return [item for item in _LIST_SPLIT.split(value) if item]


def _parse_boolean(value: str) -> str:
    lowered = value.lower()
    if lowered in {"1", "on", "yes", "true"}:
        return "1"
    if lowered in {"0", "off", "no", "false"}:
        return "0"
    return value


def parse_property_string(fmt: dict[str, Any], data: str) -> dict[str, str]:
    """Split `k=v,...` per `fmt` (aliases, default key), raising PVE's texts."""
    result: dict[str, str] = {}
    default_key: str | None = None
    for part in data.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if sep and key and value:
            if key in result:
                raise FormatError(f"duplicate key in comma-separated list property: {key}\n")
            schema = fmt.get(key)
            if schema and (alias := schema.get("alias")):
                if key_alias := schema.get("keyAlias"):
                    result[key_alias] = key
                key, schema = alias, fmt.get(alias)
            if not schema:
                raise FormatError(f"invalid key in comma-separated list property: {key}\n")
            if schema.get("type") == "boolean":
                value = _parse_boolean(value)
            result[key] = value
        elif not sep:
            if default_key is not None:
                raise FormatError(
                    f"duplicate key in comma-separated list property: {default_key}\n"
                )
            default_key = next((k for k, s in fmt.items() if s.get("default_key")), None)
            if default_key is None:
                raise FormatError("value without key, but schema does not define a default key\n")
            if default_key in result:
                raise FormatError(
                    f"duplicate key in comma-separated list property: {default_key}\n"
                )
            result[default_key] = part
        else:
            raise FormatError("missing key in comma-separated list property\n")
    return result


def check_format(fmt: str | dict[str, Any], value: str, path: str, check: CheckProp) -> None:
    """PVE's check_format: named formats, `-list`/`-opt` suffixes and property strings."""
    if isinstance(fmt, dict):
        _check_property_string(fmt, value, path, check)
        return
    if fmt in PROPERTY_FORMATS:
        _check_property_string(PROPERTY_FORMATS[fmt], value, path, check)
        return
    if fmt.endswith(("-list", "-alist")):
        verify = NAMED.get(fmt.rsplit("-", 1)[0])
        if verify:
            for item in split_list(value):
                verify(item)
        return
    if fmt.endswith("-opt"):
        verify = NAMED.get(fmt[:-4])
        if verify and value:
            verify(value)
        return
    verify = NAMED.get(fmt)
    if verify:
        verify(value)


CheckProp = Callable[[Any, dict[str, Any], str, dict[str, str]], None]


def _check_property_string(fmt: dict[str, Any], value: str, path: str, check: CheckProp) -> None:
    parsed = parse_property_string(fmt, value)
    errors: dict[str, str] = {}
    for key, schema in fmt.items():
        if "alias" in schema:
            continue
        check(parsed.get(key), schema, f"{path}.{key}" if path else key, errors)
    if errors:
        raise FormatError("format error\n", errors)
