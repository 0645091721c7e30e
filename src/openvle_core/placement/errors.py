"""Placement errors (no HTTP; the API maps them)."""

from __future__ import annotations

from collections.abc import Mapping

from openvle_core.errors import OpenVLEError


class NoCapacity(OpenVLEError):
    """No node passes the placement filters; `rejected` says what each node lacked."""

    code = "no_capacity"

    def __init__(self, rejected: Mapping[str, str]) -> None:
        reasons = "; ".join(f"{node}: {why}" for node, why in sorted(rejected.items()))
        super().__init__(f"no node can take the clone ({reasons or 'no nodes known'})")
        self.rejected = dict(rejected)
