"""Errors the CLI reports in one line (no traceback)."""

from __future__ import annotations

from openvle_core.errors import OpenVLEError


class DemoError(OpenVLEError):
    """A problem the demo reports in one line (no traceback)."""

    code = "demo_error"
