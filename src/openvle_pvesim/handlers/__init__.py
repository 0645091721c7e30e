"""The model's endpoint handlers; importing this package registers every route."""

from openvle_pvesim.handlers import (
    agent,
    clone,
    cluster,
    config,
    ha,
    migrate,
    nodes,
    pools,
    power,
    qemu,
    snapshot,
    tasks,
)

__all__ = [
    "agent",
    "clone",
    "cluster",
    "config",
    "ha",
    "migrate",
    "nodes",
    "pools",
    "power",
    "qemu",
    "snapshot",
    "tasks",
]
