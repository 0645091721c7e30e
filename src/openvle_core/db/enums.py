"""Status values stored in the database (strings, so new values need no migration)."""

from __future__ import annotations

from enum import StrEnum


class VmStatus(StrEnum):
    """A VM's status as the API shows it (see ARCHITECTURE.md)."""

    CLONING = "cloning"
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    MIGRATING = "migrating"
    DELETING = "deleting"
    ERROR = "error"
    MISSING = "missing"


TRANSITIONAL_VM_STATUSES = frozenset(
    {VmStatus.CLONING, VmStatus.STARTING, VmStatus.STOPPING, VmStatus.MIGRATING, VmStatus.DELETING}
)


class GuestIdentity(StrEnum):
    """Whether the guest at a row's vmid is provably the one the row means (see
    `guests/identity.py`): `ours` (its evidence matched when last checked), `foreign` (the
    vmid now holds a guest that is not ours: our VM is gone, the row is `missing`),
    `unconfirmed` (no evidence recorded yet: being cloned), `legacy` (made before
    evidence was recorded: confirmed once by the old rule, then evidence is recorded)."""

    UNCONFIRMED = "unconfirmed"
    OURS = "ours"
    FOREIGN = "foreign"
    LEGACY = "legacy"


class TemplateStatus(StrEnum):
    """A template's lifecycle."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    MISSING = "missing"


class EventStatus(StrEnum):
    """An event's lifecycle."""

    SCHEDULED = "scheduled"
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"
    FAILED = "failed"


class OperationState(StrEnum):
    """An operation's state; queued and running are 'in flight'."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


IN_FLIGHT_STATES = frozenset({OperationState.QUEUED, OperationState.RUNNING})


class TokenScope(StrEnum):
    """API token scopes, each including the ones before it."""

    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"


class ChangeSource(StrEnum):
    """Who made a change recorded in the changelog."""

    SYNC = "sync"
    OPERATION = "operation"
    API = "api"
