"""A dry run of the placement of many clones: where each would go and what would be left.

`plan_placement` places the clones one after another with the same filters and weigher
as a deploy (`nodes.choose_node`), counting each placed clone as pending, and reports per
node the VMs it takes and its free memory and CPU before and after, per storage the room
a full clone needs, and a sentence per group of clones that fit nowhere. Pure: the caller
reads the figures once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from openvle_core.placement.errors import NoCapacity
from openvle_core.placement.nodes import (
    CloneNeeds,
    NodeFigures,
    Pending,
    StorageFigures,
    choose_node,
    free_cores,
    free_memory_mb,
    storage_room_mb,
)


@dataclass(frozen=True)
class NodePlan:
    """One node before and after the planned clones."""

    name: str
    online: bool
    new_vms: int
    memory_free_mb_before: int
    memory_free_mb_after: int
    cpu_free_before: float
    cpu_free_after: float


@dataclass(frozen=True)
class StoragePlan:
    """Room a storage has for the planned full clones (`node` None: a shared storage)."""

    storage: str
    node: str | None
    needed_mb: int
    free_mb: int


@dataclass
class PlacementPlan:
    """Where each clone would go (None: nowhere) and what each node and storage keeps."""

    placed: list[str | None] = field(default_factory=list)
    nodes: list[NodePlan] = field(default_factory=list)
    storages: list[StoragePlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def plan_placement(
    clones: Sequence[tuple[str, CloneNeeds]],
    nodes: Sequence[NodeFigures],
    *,
    storages: Mapping[tuple[str, str], StorageFigures],
    pending: Pending,
    overcommit: float,
    previous: Mapping[str, float] | None = None,
) -> PlacementPlan:
    """Place `clones` (label, needs) in order; a clone that fits nowhere is a problem."""
    previous = previous or {}
    after = Pending(dict(pending.cores), dict(pending.memory_mb), dict(pending.disk_mb))
    plan = PlacementPlan()
    refused: dict[str, tuple[int, dict[str, str]]] = {}
    for label, needs in clones:
        try:
            node = choose_node(
                nodes,
                needs,
                storages=storages,
                pending=after,
                previous=previous,
                overcommit=overcommit,
            )
        except NoCapacity as exc:
            count, reasons = refused.get(label, (0, exc.rejected))
            refused[label] = (count + 1, reasons)
            plan.placed.append(None)
            continue
        after.add(node, needs)
        plan.placed.append(node)
    plan.nodes = _node_plans(nodes, plan.placed, pending, after, previous)
    plan.storages = _storage_plans(clones, plan.placed, storages, pending)
    plan.problems = [_problem(label, n, why) for label, (n, why) in refused.items()]
    return plan


def _node_plans(
    nodes: Sequence[NodeFigures],
    placed: Sequence[str | None],
    before: Pending,
    after: Pending,
    previous: Mapping[str, float],
) -> list[NodePlan]:
    return [
        NodePlan(
            name=node.name,
            online=node.online,
            new_vms=sum(1 for p in placed if p == node.name),
            memory_free_mb_before=free_memory_mb(node, before),
            memory_free_mb_after=free_memory_mb(node, after),
            cpu_free_before=round(free_cores(node, before, previous), 2),
            cpu_free_after=round(free_cores(node, after, previous), 2),
        )
        for node in sorted(nodes, key=lambda n: n.name)
    ]


def _storage_plans(
    clones: Sequence[tuple[str, CloneNeeds]],
    placed: Sequence[str | None],
    storages: Mapping[tuple[str, str], StorageFigures],
    pending: Pending,
) -> list[StoragePlan]:
    """Room needed per target storage by the full clones that were placed."""
    needed: dict[tuple[str, str | None], int] = {}
    for (_, needs), node in zip(clones, placed, strict=True):
        if node is None or not needs.full:
            continue
        for storage in needs.storages:
            figures = storages.get((storage, node))
            key = (storage, None if figures is not None and figures.shared else node)
            needed[key] = needed.get(key, 0) + needs.disk_mb
    plans = []
    for (storage, node), mb in sorted(needed.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        seen_from = node or next(n for (s, n) in storages if s == storage)
        room = storage_room_mb(storage, seen_from, storages, pending) or 0
        plans.append(StoragePlan(storage, node, mb, room))
    return plans


def _problem(label: str, count: int, rejected: Mapping[str, str]) -> str:
    reasons = "; ".join(f"{node}: {why}" for node, why in sorted(rejected.items()))
    return f"{count} VM(s) of {label} fit on no node ({reasons or 'no nodes known'})"
