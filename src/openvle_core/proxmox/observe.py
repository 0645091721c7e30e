"""Metrics hooks: the client reports each HTTP attempt and retry to an observer.

The API wires an observer that feeds Prometheus; this module stays free of it. The
`endpoint` is the schema path template (`/nodes/{node}/qemu/{vmid}/status/current`),
so label cardinality stays bounded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol


class ProxmoxObserver(Protocol):
    """Receives one call per HTTP attempt and one per retry."""

    def request_done(
        self, method: str, endpoint: str, status: int | None, seconds: float, error: str | None
    ) -> None:
        """An attempt finished: HTTP status (None if no response) and the error class name."""

    def retrying(self, method: str, endpoint: str, error: str) -> None:
        """A transient `error` (class name) is about to be retried."""


class NullObserver:
    """The default: observe nothing."""

    def request_done(
        self, method: str, endpoint: str, status: int | None, seconds: float, error: str | None
    ) -> None:
        """Ignore."""

    def retrying(self, method: str, endpoint: str, error: str) -> None:
        """Ignore."""


@dataclass
class CallStats:
    """An in-memory observer: counts per (method, endpoint), errors by kind, total latency."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    retries: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0

    def request_done(
        self, method: str, endpoint: str, status: int | None, seconds: float, error: str | None
    ) -> None:
        """Count the attempt and its error kind."""
        self.requests[(method, endpoint)] += 1
        self.seconds += seconds
        if error is not None:
            self.errors[error] += 1

    def retrying(self, method: str, endpoint: str, error: str) -> None:
        """Count the retry."""
        self.retries[(method, endpoint)] += 1
