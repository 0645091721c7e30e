"""The dry run of many clones: where each goes, node figures before and after, storage
room for full clones, and the problem sentences of clones that fit nowhere."""

from __future__ import annotations

from openvle_core.placement.nodes import (
    CloneNeeds,
    NodeFigures,
    Pending,
    StorageFigures,
    storage_index,
)
from openvle_core.placement.plan import plan_placement

GIB = 1024


def test_a_plan_spreads_clones_and_reports_each_node_before_and_after() -> None:
    nodes = [
        NodeFigures("pve1", True, 0.0, 16, 0, 64 * GIB),
        NodeFigures("pve2", True, 0.5, 16, 0, 64 * GIB),
        NodeFigures("pve3", False, 0.0, 16, 0, 64 * GIB),
    ]
    want = CloneNeeds(4 * GIB, 2, "pve1", frozenset({"ceph"}), True, False)
    plan = plan_placement(
        [("debian", want)] * 6, nodes, storages={}, pending=Pending(), overcommit=1.0
    )
    assert plan.problems == []
    by_name = {n.name: n for n in plan.nodes}
    assert by_name["pve1"].new_vms + by_name["pve2"].new_vms == 6
    assert by_name["pve3"].new_vms == 0
    assert by_name["pve1"].cpu_free_before == 16.0
    assert by_name["pve1"].cpu_free_after == 16.0 - 2 * by_name["pve1"].new_vms
    assert by_name["pve2"].memory_free_mb_after == 64 * GIB - 4 * GIB * by_name["pve2"].new_vms


def test_clones_that_fit_nowhere_become_one_sentence_per_template() -> None:
    nodes = [NodeFigures("pve1", True, 0.0, 16, 0, 10 * GIB)]
    small = CloneNeeds(4 * GIB, 1, "pve1", frozenset({"ceph"}), True, False)
    plan = plan_placement(
        [("debian", small)] * 5, nodes, storages={}, pending=Pending(), overcommit=1.0
    )
    assert plan.placed.count("pve1") == 2
    assert plan.placed.count(None) == 3
    assert len(plan.problems) == 1
    assert plan.problems[0].startswith("3 VM(s) of debian fit on no node (pve1: memory:")


def test_full_clones_report_the_room_they_need_per_storage() -> None:
    nodes = [NodeFigures("pve1", True, 0.0, 16, 0, 64 * GIB)]
    figures = storage_index([StorageFigures("local-lvm", "pve1", False, 50 * GIB)])
    full = CloneNeeds(GIB, 1, "pve1", frozenset({"local-lvm"}), False, True, 20 * GIB)
    plan = plan_placement(
        [("kali", full)] * 3, nodes, storages=figures, pending=Pending(), overcommit=1.5
    )
    assert plan.placed == ["pve1", "pve1", None]  # 50 GiB hold two copies of 20
    [storage] = plan.storages
    assert (storage.storage, storage.node, storage.needed_mb, storage.free_mb) == (
        "local-lvm",
        "pve1",
        40 * GIB,
        50 * GIB,
    )
    assert "storage local-lvm: 10,240 MiB free < 20,480 MiB" in plan.problems[0]


def test_the_plan_counts_clones_already_pending() -> None:
    nodes = [NodeFigures("pve1", True, 0.0, 16, 0, 8 * GIB)]
    want = CloneNeeds(4 * GIB, 1, "pve1", frozenset({"ceph"}), True, False)
    pending = Pending(memory_mb={"pve1": 6 * GIB})
    plan = plan_placement([("x", want)], nodes, storages={}, pending=pending, overcommit=1.0)
    assert plan.placed == [None]
    assert plan.nodes[0].memory_free_mb_before == 2 * GIB
