"""The model's endpoint handlers; importing this package registers every route."""

from openvle_pvesim.handlers import (
    agent,
    clone,
    cluster,
    config,
    disk,
    ha,
    hastatus,
    migrate,
    movedisk,
    nodes,
    pools,
    power,
    qemu,
    snapshot,
    storage,
    tasks,
)

__all__ = [
    "agent",
    "clone",
    "cluster",
    "config",
    "disk",
    "ha",
    "hastatus",
    "migrate",
    "movedisk",
    "nodes",
    "pools",
    "power",
    "qemu",
    "snapshot",
    "storage",
    "tasks",
]
