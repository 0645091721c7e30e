"""Event domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.errors import ConflictError, NotFoundError, OpenVLEError

if TYPE_CHECKING:
    pass


class EventNotFound(NotFoundError):
    """No event with that id."""

    code = "event_not_found"


class SlugTaken(ConflictError):
    """Another event already uses that slug."""

    code = "slug_taken"


class InvalidEvent(OpenVLEError):
    """A field of an event is not acceptable (unknown template, ends before it starts)."""

    code = "invalid_event"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class EventBusy(ConflictError):
    """The event's state forbids the change (deployed events keep their VMs' shape)."""

    code = "event_busy"


class EventIncomplete(OpenVLEError):
    """Some VMs of an event could not be deployed or archived; the message lists them."""

    code = "event_incomplete"


class CapacityExceeded(ConflictError):
    """The event does not fit the cluster now (its plan's `problems` say why)."""

    code = "capacity"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the event does not fit: " + "; ".join(problems))
        self.problems = problems
