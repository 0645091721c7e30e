"""Deploy and archive of an event against the simulator, checked on the cluster."""

from __future__ import annotations

from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator
from tests.events.kit import (
    DEBIAN,
    UBUNTU,
    allocations,
    event_row,
    event_vms,
    make_event,
    pool_guests,
    run,
    smbios,
    tasks_of,
)


async def test_deploy_then_archive_leaves_the_cluster_as_it_was(
    runtime: Runtime, sim: Simulator
) -> None:
    event_id = await make_event(runtime, "lab_1", 3)

    op = await run(runtime, "deploy", event_id)

    assert (op.state, op.error_message) == ("succeeded", None)
    assert (op.progress_done, op.progress_total) == (6, 6)
    assert (await event_row(runtime, event_id)).status == "deployed"
    vms = await event_vms(runtime, event_id)
    guests = pool_guests(sim)
    assert sorted(g.name for g in guests.values()) == sorted(vm.name for vm in vms)
    assert sorted(vm.name for vm in vms) == [
        f"lab-1-00{p}-{t}"
        for p in (1, 2, 3)
        for t in ("debian-12-template", "ubuntu-2404-template")
    ]
    for vm in vms:
        guest = guests[vm.vmid]
        assert (vm.status, guest.running, vm.node) == ("running", True, guest.node)
        assert smbios(guest)["family"] == "lab_1"
        assert smbios(guest)["serial"] == vm.id
        assert (vm.ipv4 or "").startswith("10.20.")
        assert vm.ha_managed
    assert set(sim.cluster.ha) == set(guests)

    archived = await run(runtime, "archive", event_id)

    assert (archived.state, archived.error_message) == ("succeeded", None)
    assert (archived.progress_done, archived.progress_total) == (6, 6)
    assert (await event_row(runtime, event_id)).status == "archived"
    assert pool_guests(sim) == {}
    assert sim.cluster.ha == {}
    assert await event_vms(runtime, event_id) == []
    assert tasks_of(sim, "qmdestroy") == 6
    again = await run(runtime, "archive", event_id)  # safe to repeat
    assert again.state == "succeeded"
    assert tasks_of(sim, "qmdestroy") == 6


async def test_deploy_again_creates_only_what_is_missing(runtime: Runtime, sim: Simulator) -> None:
    event_id = await make_event(runtime, "again", 2, (DEBIAN,))
    assert (await run(runtime, "deploy", event_id)).state == "succeeded"
    first = {vm.id: vm.vmid for vm in await event_vms(runtime, event_id)}
    victim = next(iter(pool_guests(sim).values()))
    sim.cluster.vms[victim.vmid].running = False  # stopped behind our back

    again = await run(runtime, "deploy", event_id)

    assert again.state == "succeeded"
    assert {vm.id: vm.vmid for vm in await event_vms(runtime, event_id)} == first
    assert tasks_of(sim, "qmclone") == 2
    assert all(g.running for g in pool_guests(sim).values())


async def test_cloud_init_addresses_are_written_and_released(
    make_runtime: object, sim: Simulator
) -> None:
    cloudinit = {"enabled": True, "network": "10.30.0.0", "subnet": "24", "gateway": "10.30.0.1"}
    async with make_runtime(cloudinit=cloudinit) as runtime:  # type: ignore[operator]
        event_id = await make_event(runtime, "cinit", 2, (UBUNTU,))
        assert (await run(runtime, "deploy", event_id)).state == "succeeded"
        vms = await event_vms(runtime, event_id)
        guests = pool_guests(sim)
        assert sorted(vm.ipv4 for vm in vms) == ["10.30.0.2", "10.30.0.3"]
        for vm in vms:
            assert guests[vm.vmid].config["ipconfig0"] == f"ip={vm.ipv4}/24,gw=10.30.0.1"
        assert len(await allocations(runtime)) == 2

        assert (await run(runtime, "archive", event_id)).state == "succeeded"
        assert await allocations(runtime) == []
        assert pool_guests(sim) == {}
