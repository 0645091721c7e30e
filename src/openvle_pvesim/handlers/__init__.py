"""The model's endpoint handlers; importing this package registers every route."""

from openvle_pvesim.handlers import cluster, nodes

__all__ = ["cluster", "nodes"]
