"""What a deploy costs the cluster, counted by the simulator's own request log.

A small deploy stays under a fixed number of Proxmox requests per VM (a change that adds
a poll or a re-read per VM fails here), and the same deploy into a pool already holding
many other VMs sends no more requests of any kind: the deploy's conversation is
O(event), not O(pool).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from openvle_core.db.migrate import upgrade_to_head
from openvle_pvesim import Simulator, run_simulator
from tests.events.kit import DEBIAN, make_event, run, runtime_factory
from tests.vms.kit import TIME_SCALE

VMS = 4
MAX_REQUESTS_PER_VM = 10.0
# Polls (task lists, agent reads) depend on timing, not on the pool: a little slack.
POLL_SLACK = 6
PREFILLED = 400


async def deploy_requests(sim: Simulator, tmp: Path, name: str = "db") -> Counter[str]:
    """Deploy an event of VMS VMs from one template (database `tmp/name.sqlite3`); the
    requests it sent, by `METHOD template`."""
    url = f"sqlite+aiosqlite:///{tmp / f'{name}.sqlite3'}"
    await upgrade_to_head(url)
    async with runtime_factory(sim, url, None)() as runtime:
        event_id = await make_event(runtime, "econ", VMS, (DEBIAN,))
        before = Counter(sim.request_log)
        op = await run(runtime, "deploy", event_id)
        assert op.state == "succeeded", op.error
        spent = Counter(sim.request_log)
        spent.subtract(before)
    return Counter({f"{m} {p}": n for (m, p), n in spent.items() if n > 0})


def table(counts: Counter[str], vms: int) -> str:
    return "\n".join(f"{n / vms:5.2f} {k}" for k, n in counts.most_common())


async def test_small_deploy_stays_under_the_request_budget(tmp_path: Path) -> None:
    async with run_simulator(version="9.1", time_scale=TIME_SCALE) as sim:
        counts = await deploy_requests(sim, tmp_path)
    per_vm = sum(counts.values()) / VMS
    assert per_vm <= MAX_REQUESTS_PER_VM, table(counts, VMS)
    assert counts["GET /pools"] == 0, table(counts, VMS)


async def test_no_request_count_grows_with_the_pool(tmp_path: Path) -> None:
    async with run_simulator(version="9.1", time_scale=TIME_SCALE) as sim:
        empty = await deploy_requests(sim, tmp_path, "empty")
    async with run_simulator(version="9.1", time_scale=TIME_SCALE, vms=PREFILLED) as sim:
        assert len(sim.cluster.pools["OpenVLE-VMs"].vms) > PREFILLED
        full = await deploy_requests(sim, tmp_path, "full")
    grown = {k: (empty[k], n) for k, n in full.items() if n > empty[k] + POLL_SLACK}
    assert grown == {}, f"empty pool:\n{table(empty, VMS)}\nfull pool:\n{table(full, VMS)}"
