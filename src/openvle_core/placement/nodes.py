"""Where a new clone goes.

Shared storage: the online node with the most free CPU, where free = maxcpu x (1 - cpu)
minus the cores of clones already placed there but not yet visible in Proxmox's stats
(the API lags ~10 s behind new VMs). A single sample of exactly 0 CPU on a node that runs
guests is not trusted (PVE sometimes reports it): the last known load is used instead.
Local storage: the template's own node (nothing else can use its disks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openvle_core.placement.errors import NoPlacement


@dataclass(frozen=True)
class NodeLoad:
    """A node's live figures: status, CPU fraction in use, CPU count."""

    name: str
    online: bool
    cpu: float
    maxcpu: int


def effective_cpu(node: NodeLoad, previous: Mapping[str, float]) -> float:
    """The CPU fraction to trust: a zero sample falls back to the last known load."""
    if node.cpu <= 0.0 and previous.get(node.name, 0.0) > 0.0:
        return previous[node.name]
    return node.cpu


def free_cores(node: NodeLoad, previous: Mapping[str, float], inflight_cores: float) -> float:
    """Cores free on `node` after counting clones placed there but not yet visible."""
    return node.maxcpu * (1.0 - effective_cpu(node, previous)) - inflight_cores


def choose_node(
    nodes: Sequence[NodeLoad],
    *,
    inflight_cores: Mapping[str, float],
    previous: Mapping[str, float],
) -> str:
    """The online node with the most free cores (ties: by name, for stable results)."""
    online = [n for n in nodes if n.online and n.maxcpu > 0]
    if not online:
        raise NoPlacement("no online node to place the clone on")
    best = max(
        online,
        key=lambda n: (free_cores(n, previous, inflight_cores.get(n.name, 0.0)), _neg(n.name)),
    )
    return best.name


def _neg(name: str) -> tuple[int, ...]:
    """Sort key that prefers the alphabetically first name among equals."""
    return tuple(-ord(c) for c in name)
