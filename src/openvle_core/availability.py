"""Whether a dependency (the database, Redis) answers, as this process last saw it.

An outage is logged once: the first failure after a success logs one line (and counts
one outage), the first success after the failures logs one line saying how long it
lasted; the failures in between are quiet (callers answer 503 with Retry-After, or the
worker waits and retries). `DATABASE` and `REDIS` are the process's two trackers: the
API's error mapping, the session factories, the queue and the worker report into them.
"""

from __future__ import annotations

import logging
import threading
import time

from openvle_core.metrics import DEPENDENCY_OUTAGES, DEPENDENCY_UP

log = logging.getLogger(__name__)


class Availability:
    """One dependency's state in this process; `lost()` and `restored()` log transitions."""

    def __init__(self, name: str, *, available: bool = True) -> None:
        self.name = name
        self.available = available
        self.down_since: float | None = None
        self.outages = 0  # outages seen by this process (tests read it; the metric too)
        self._lock = threading.Lock()  # the sync engine events may run in a thread
        DEPENDENCY_UP.labels(name).set(1 if available else 0)

    def lost(self, exc: BaseException | str) -> bool:
        """Note a failure; True (and one log line) when it starts an outage."""
        with self._lock:
            if not self.available and self.down_since is not None:
                return False
            self.available = False
            self.down_since = time.monotonic()
            self.outages += 1
        DEPENDENCY_UP.labels(self.name).set(0)
        DEPENDENCY_OUTAGES.labels(self.name).inc()
        log.error(
            "%s unavailable (%s); waiting for it to come back",
            self.name,
            describe(exc),
        )
        return True

    def restored(self) -> bool:
        """Note a success; True (and one log line) when it ends an outage."""
        if self.available:  # the hot path: no lock, no log
            return False
        with self._lock:
            if self.available:
                return False
            self.available = True
            since, self.down_since = self.down_since, None
        DEPENDENCY_UP.labels(self.name).set(1)
        if since is None:
            log.info("%s reachable", self.name)
        else:
            log.warning("%s available again after %.1f s", self.name, time.monotonic() - since)
        return True


def describe(exc: BaseException | str) -> str:
    """A one-line reason: the error's class and the first line of its message."""
    if isinstance(exc, str):
        return exc
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


DATABASE = Availability("database")
REDIS = Availability("redis")
