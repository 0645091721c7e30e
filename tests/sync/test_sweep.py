"""The identity sweep's choice of rows (`IdentityMemo.stale`), without Proxmox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from openvle_core.sync.identity import TTL_S, IdentityMemo
from openvle_core.sync.plan import GuestRef, Verdict

NOW = 10_000.0


def refs(*vmids: int) -> dict[str, GuestRef]:
    return {f"vm-{v}": GuestRef(f"vm-{v}", "pve1", v) for v in vmids}


class Counted(Mapping[str, GuestRef]):
    """A mapping that counts the rows its iteration handed out."""

    def __init__(self, rows: dict[str, GuestRef]) -> None:
        self.rows, self.seen = rows, 0

    def __getitem__(self, key: str) -> GuestRef:
        return self.rows[key]

    def __iter__(self) -> Iterator[str]:
        for key in self.rows:
            self.seen += 1
            yield key

    def __len__(self) -> int:
        return len(self.rows)


def test_refused_first_then_never_confirmed_then_the_oldest() -> None:
    present = refs(5, 1, 2, 3, 4, 6, 7)
    memo = IdentityMemo()
    for vmid, age in ((6, TTL_S + 300), (7, TTL_S + 100), (1, 5), (2, TTL_S + 200)):
        memo.entries[vmid] = (f"vm-{vmid}", NOW - age)
    memo.entries = dict(sorted(memo.entries.items(), key=lambda item: item[1][1]))

    chosen = memo.stale(present, {"vm-4"}, NOW, 10, first={"vm-7", "vm-1"})

    # refused (by vmid) whatever the memo says; never confirmed in the rows' order (4 is
    # skipped); then the least recently confirmed; 1 and 7 once; 1 was confirmed 5 s ago
    assert [ref.vmid for ref in chosen] == [1, 7, 5, 3, 6, 2]
    assert [ref.vmid for ref in memo.stale(present, (), NOW, 2)] == [5, 3]
    assert memo.stale(present, (), NOW, 0) == []


def test_a_vmid_confirmed_for_another_row_counts_as_never_confirmed() -> None:
    memo = IdentityMemo({9: ("vm-old", NOW)})  # the vmid held another row's guest
    assert memo.stale(refs(9), (), NOW, 5) == [GuestRef("vm-9", "pve1", 9)]


def test_the_sweep_stops_once_it_has_enough() -> None:
    present = Counted(refs(*range(100, 10_100)))
    chosen = IdentityMemo().stale(present, (), NOW, 25)
    assert [ref.vmid for ref in chosen] == list(range(100, 125))
    assert present.seen == 25  # not a pass over 10,000 rows


def test_settle_keeps_the_memo_in_the_order_of_confirmation() -> None:
    memo = IdentityMemo()
    a, b = GuestRef("vm-a", "pve1", 1), GuestRef("vm-b", "pve1", 2)
    memo.settle([a, b], {"vm-a": _ok(), "vm-b": _ok()})
    memo.settle([a], {"vm-a": _ok()})  # confirmed again: now the most recent
    assert list(memo.entries) == [2, 1]
    memo.settle([b], {})  # not read this time: forgotten
    assert list(memo.entries) == [1]


def _ok() -> Verdict:
    return Verdict(None)
