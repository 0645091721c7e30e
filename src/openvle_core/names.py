"""DNS-safe guest names: what Proxmox accepts as a VM name (its `dns-name` format)."""

from __future__ import annotations

import re

from openvle_core.errors import InvalidRequest

MAX_NAME = 63


def dns_name(text: str) -> str:
    """A DNS-safe VM name (PVE's `dns-name`): lower case, [a-z0-9-], no edge hyphens."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].strip("-")
    if not name:
        raise InvalidRequest(f"{text!r} gives no usable VM name (letters, digits, hyphens)")
    return name
