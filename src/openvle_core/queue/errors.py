"""Errors of the job queue port."""

from __future__ import annotations

from openvle_core.errors import OpenVLEError


class QueueUnavailable(OpenVLEError):
    """The queue (Redis) cannot take work right now: nothing was queued; try again later."""

    code = "queue_unavailable"
