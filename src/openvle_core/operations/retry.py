"""Which failures an operation retries, and how long it waits before the next try.

Transient: Proxmox unreachable or busy (`ProxmoxUnavailable`: timeouts, 5xx/595/596,
synchronous lock timeouts), a task that lost a lock race (`can't lock file ... got
timeout`) and a task wait that ran out (the task may still finish; the re-run checks).
Everything else is permanent and fails the operation at once with its reason.
"""

from __future__ import annotations

from openvle_core.errors import TransientStep
from openvle_core.operations.kinds import OperationKind
from openvle_core.proxmox import ProxmoxTaskFailed, ProxmoxTaskTimeout, ProxmoxUnavailable

CLONE_BACKOFF = (10.0, 30.0, 60.0)
ACTION_BACKOFF = (5.0, 10.0, 15.0)
CLONE_KINDS = frozenset({OperationKind.VM_CLONE, OperationKind.TEMPLATE_CREATE})


def is_transient(exc: BaseException) -> bool:
    """True if running the operation again later may succeed."""
    if isinstance(exc, ProxmoxUnavailable | ProxmoxTaskTimeout | TransientStep):
        return True
    return isinstance(exc, ProxmoxTaskFailed) and exc.lock_timeout


def backoff(kind: str, retry: int, scale: float) -> float:
    """Seconds before retry number `retry` (0-based): clone 10/30/60, actions 5/10/15."""
    steps = CLONE_BACKOFF if kind in CLONE_KINDS else ACTION_BACKOFF
    return steps[min(retry, len(steps) - 1)] * scale
