"""Node domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import NotFoundError


class NodeNotFound(NotFoundError):
    """No node with that name (the sync has not seen it)."""

    code = "node_not_found"
