"""Importing this module registers every engine operation kind."""

from __future__ import annotations

from openvle_core.engine import delete, migrate, power, templates, vm_clone

__all__ = ["delete", "migrate", "power", "templates", "vm_clone"]
