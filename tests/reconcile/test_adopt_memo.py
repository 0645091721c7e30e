"""Adoption remembers the serials of unmanaged pool VMs: steady-state syncs do not re-read
their configs, a VM recreated under the same vmid (another name) is read again."""

from __future__ import annotations

from openvle_core.db.session import transaction
from openvle_core.proxmox import ProxmoxClient
from openvle_core.proxmox.tasks import PollSchedule
from openvle_core.vms.repository import VmRepository
from tests.reconcile.kit import FAST_RETRY, Harness
from tests.reconcile.test_sync import known_vms


class Recorder:
    """A ProxmoxObserver that keeps every (method, endpoint) attempted."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def request_done(
        self, method: str, endpoint: str, status: int | None, seconds: float, error: str | None
    ) -> None:
        self.calls.append((method, endpoint))

    def retrying(self, method: str, endpoint: str, error: str) -> None:
        """Not needed here."""

    def config_reads(self) -> int:
        return sum(
            1 for method, endpoint in self.calls if method == "GET" and endpoint.endswith("/config")
        )


async def test_a_second_sync_does_not_reread_an_unmanaged_vm(harness: Harness) -> None:
    recorder = Recorder()
    assert harness.http is not None
    harness.proxmox = ProxmoxClient(
        harness.http,
        harness.settings.proxmox,
        retry=FAST_RETRY,
        poll=PollSchedule(first=0.005, cap=0.05),
        observer=recorder,
    )
    vms = await known_vms(harness)  # a first sync: templates imported, every VM ours
    await harness.sync()
    async with transaction(harness.sessions) as session:
        await VmRepository(session).delete(vms[10007].id)
    reads = []
    results = []
    for step in range(3):
        if step == 2:  # the vmid now holds another VM (another name)
            harness.sim.cluster.vms[10007].config["name"] = "recreated"
            harness.sim.cluster.tick()
        before = recorder.config_reads()
        results.append(await harness.sync())
        reads.append(recorder.config_reads() - before)
    assert [r.unmanaged_vmids for r in results] == [[10007]] * 3
    assert reads == [1, 0, 1]
