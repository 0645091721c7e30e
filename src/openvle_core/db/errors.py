"""Database errors of our own: a bad page cursor, a migration lock not taken, no database."""

from __future__ import annotations

from openvle_core.errors import OpenVLEError


class InvalidCursor(OpenVLEError):
    """A cursor this service did not hand out (or from another list)."""

    code = "invalid_cursor"


class MigrationLockTimeout(OpenVLEError):
    """Another replica held the migration lock for too long."""

    code = "migration_lock_timeout"


class DatabaseUnreachable(OpenVLEError):
    """The database did not answer within the time given (or refused us for good)."""

    code = "database_unreachable"


class DatabaseUnavailable(OpenVLEError):
    """The database cannot be reached right now (an outage or a restart): try again later."""

    code = "database_unavailable"
