"""Importing this module registers the event operation kinds (deploy, archive, per VM)."""

from __future__ import annotations

from openvle_core.events import archive, deploy

__all__ = ["archive", "deploy"]
