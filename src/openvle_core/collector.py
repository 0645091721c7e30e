"""Pausing Python's cyclic garbage collector around bulk work (`paused`).

A sync of 10,000 VMs makes about 50,000 short-lived containers (a row view, a guest
ref, a plan entry each) that reference counting frees once the sync ends; none of them
is cyclic garbage. The collector still counts every allocation and, every 700, walks
the young generation, and now and then the older ones: 70 collections and 20-50 ms of a
sync's CPU, about a tenth of it, for nothing found (issue 16,
docs/explanation/benchmarks.md). Inside `paused()` it does not run; reference counting
frees what it always frees, and cyclic garbage made meanwhile (an exception's
traceback, say) waits until the pause ends, when the collector runs as usual. Pauses
may nest and overlap (a counter): the collector resumes when the last one ends, and
only if it was enabled before the first began (`gc.disable()` by anyone else is kept).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_state = {"pauses": 0, "was_enabled": False}


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic garbage collection inside (reference counting works as always)."""
    if _state["pauses"] == 0:
        _state["was_enabled"] = gc.isenabled()
        gc.disable()
    _state["pauses"] += 1
    try:
        yield
    finally:
        _state["pauses"] -= 1
        if _state["pauses"] == 0 and _state["was_enabled"]:
            gc.enable()
