"""The placement's filters and weigher, pure: each filter alone, every combination of them
over small clusters (exhaustively), and the seed's CPU rule as the weigher."""

from __future__ import annotations

import itertools

import pytest

from openvle_core.placement.errors import NoCapacity
from openvle_core.placement.nodes import (
    CloneNeeds,
    NodeFigures,
    Pending,
    StorageFigures,
    choose_node,
    free_memory_mb,
    rejection,
    storage_index,
)

GIB = 1024


def node(
    name: str,
    *,
    online: bool = True,
    cpu: float = 0.1,
    maxcpu: int = 32,
    mem: int = 8 * GIB,
    maxmem: int = 256 * GIB,
) -> NodeFigures:
    return NodeFigures(name, online, cpu, maxcpu, mem, maxmem)


def needs(
    *,
    memory: int = 4 * GIB,
    cores: int = 2,
    shared: bool = True,
    full: bool = False,
    disk: int = 10 * GIB,
    template_node: str = "pve1",
) -> CloneNeeds:
    storages = frozenset({"ceph"} if shared else {"local-lvm"})
    return CloneNeeds(memory, cores, template_node, storages, shared, full, disk)


def storages(*figures: StorageFigures) -> dict[tuple[str, str], StorageFigures]:
    return storage_index(list(figures))


def choose(nodes: list[NodeFigures], want: CloneNeeds, **kw: object) -> str:
    options: dict[str, object] = {
        "storages": storages(
            *(StorageFigures("ceph", n.name, True, 1000 * GIB) for n in nodes),
            *(StorageFigures("local-lvm", n.name, False, 100 * GIB) for n in nodes),
        ),
        "pending": Pending(),
        "previous": {},
        "overcommit": 1.5,
        **kw,
    }
    return choose_node(nodes, want, **options)  # type: ignore[arg-type]


# --- the weigher: the seed's rule ----------------------------------------------------


def test_the_most_free_cpu_wins_and_pending_clones_count() -> None:
    nodes = [node("pve1", cpu=0.10), node("pve2", cpu=0.50)]
    assert choose(nodes, needs()) == "pve1"
    busy = Pending(cores={"pve1": 20.0})  # clones placed there the API does not show yet
    assert choose(nodes, needs(), pending=busy) == "pve2"


def test_a_single_zero_cpu_sample_is_not_trusted() -> None:
    nodes = [node("pve1", cpu=0.0), node("pve2", cpu=0.30)]
    assert choose(nodes, needs(), previous={"pve1": 0.9}) == "pve2"
    assert choose(nodes, needs()) == "pve1"


def test_ties_go_to_the_first_name() -> None:
    assert choose([node("pve2"), node("pve1"), node("pve3")], needs()) == "pve1"


# --- each filter ---------------------------------------------------------------------


def test_offline_nodes_are_filtered_out() -> None:
    assert choose([node("pve1", online=False, cpu=0.0), node("pve2", cpu=0.9)], needs()) == "pve2"
    with pytest.raises(NoCapacity, match="pve1: offline"):
        choose([node("pve1", online=False)], needs())


def test_local_disks_keep_the_clone_on_the_template_node() -> None:
    nodes = [node("pve1", cpu=0.9), node("pve2", cpu=0.0)]
    assert choose(nodes, needs(shared=False, template_node="pve1")) == "pve1"
    with pytest.raises(NoCapacity, match="pve2: the template's disks are on local storage"):
        choose([node("pve1", online=False), node("pve2")], needs(shared=False))


def test_memory_counts_pending_clones_and_the_overcommit_ratio() -> None:
    full = node("pve1", mem=254 * GIB)  # 2 GiB free
    assert choose([full], needs(memory=3 * GIB)) == "pve1"  # 2 x 1.5 = 3 GiB covers 3
    with pytest.raises(NoCapacity, match=r"memory: 2,048 MiB free x 1 overcommit < 3,072"):
        choose([full], needs(memory=3 * GIB), overcommit=1.0)
    placed = Pending(memory_mb={"pve1": 1 * GIB})
    assert free_memory_mb(full, placed) == 1 * GIB
    with pytest.raises(NoCapacity, match="memory"):
        choose([full], needs(memory=3 * GIB), pending=placed)


def test_a_full_clone_needs_room_on_each_target_storage_and_a_linked_one_none() -> None:
    nodes = [node("pve1"), node("pve2")]
    tight = storages(
        StorageFigures("local-lvm", "pve1", False, 5 * GIB),
        StorageFigures("ceph", "pve1", True, 1000 * GIB),
        StorageFigures("ceph", "pve2", True, 1000 * GIB),
    )
    local = needs(shared=False, full=True, disk=10 * GIB)
    with pytest.raises(NoCapacity, match=r"storage local-lvm: 5,120 MiB free < 10,240 MiB"):
        choose(nodes, local, storages=tight)
    assert choose(nodes, needs(shared=False, full=False), storages=tight) == "pve1"
    taken = Pending(disk_mb={("ceph", "pve2"): 995 * GIB})  # shared: counts from any node
    with pytest.raises(NoCapacity, match="storage ceph"):
        choose(nodes, needs(full=True, disk=10 * GIB), storages=tight, pending=taken)


def test_a_storage_missing_on_the_node_refuses_a_full_clone() -> None:
    only_pve1 = storages(StorageFigures("ceph", "pve1", True, 1000 * GIB))
    assert choose([node("pve1"), node("pve2")], needs(full=True), storages=only_pve1) == "pve1"
    with pytest.raises(NoCapacity, match="storage ceph is not available on pve2"):
        choose([node("pve2")], needs(full=True), storages=only_pve1)


def test_no_capacity_names_every_node_and_what_it_lacked() -> None:
    nodes = [node("pve1", online=False), node("pve2", mem=256 * GIB)]
    with pytest.raises(NoCapacity) as info:
        choose(nodes, needs())
    assert info.value.code == "no_capacity"
    assert set(info.value.rejected) == {"pve1", "pve2"}
    assert "pve1: offline" in info.value.message
    assert "pve2: memory: 0 MiB free" in info.value.message


# --- every combination over a small cluster ---------------------------------------------


@pytest.mark.parametrize(
    ("online", "free_gib", "room_gib", "shared", "full"),
    list(itertools.product([True, False], [0, 2, 3, 8], [0, 20], [True, False], [True, False])),
)
def test_a_node_passes_exactly_when_every_filter_passes(
    online: bool, free_gib: int, room_gib: int, shared: bool, full: bool
) -> None:
    """One node, each filter's input varied: passing == the conjunction of the rules."""
    candidate = node("pve2", online=online, mem=(256 - free_gib) * GIB)
    want = needs(memory=4 * GIB, shared=shared, full=full, disk=10 * GIB, template_node="pve1")
    figures = storages(
        StorageFigures("ceph", "pve2", True, room_gib * GIB),
        StorageFigures("local-lvm", "pve2", False, room_gib * GIB),
    )
    expected = (
        online
        and shared  # the template is on pve1: local disks cannot come to pve2
        and free_gib * 1.5 >= 4
        and (not full or room_gib >= 10)
    )
    reason = rejection(candidate, want, figures, Pending(), 1.5)
    assert (reason is None) == expected, reason


def test_placing_many_fills_nodes_until_memory_stops_them() -> None:
    """A batch places clone after clone, counting each as pending: it spreads by free CPU
    and stops exactly where memory x overcommit runs out."""
    nodes = [
        node("pve1", cpu=0.0, mem=0, maxmem=16 * GIB),
        node("pve2", cpu=0.0, mem=0, maxmem=16 * GIB),
    ]
    pending = Pending()
    placed: list[str] = []
    want = needs(memory=4 * GIB, cores=1)
    for _ in range(8):
        chosen = choose(nodes, want, pending=pending, overcommit=1.0)
        pending.add(chosen, want)
        placed.append(chosen)
    assert placed.count("pve1") == placed.count("pve2") == 4  # 16 GiB / 4 GiB each
    with pytest.raises(NoCapacity):
        choose(nodes, want, pending=pending, overcommit=1.0)
