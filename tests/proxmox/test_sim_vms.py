"""VM-level calls against the simulator: pool guard, clone, power, HA, errors from real states."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from openvle_core.proxmox import (
    HaGroupsUnsupported,
    MigrationBlocked,
    OutsidePool,
    ProxmoxConflict,
    ProxmoxNotFound,
    ProxmoxPermissionDenied,
    ProxmoxTaskFailed,
    ProxmoxTaskTimeout,
    ProxmoxValidationError,
)
from openvle_core.proxmox.agent import AGENT_DOWN, NO_AGENT, VM_DOWN
from openvle_pvesim import run_simulator
from tests.proxmox.simclient import ADMIN_TOKEN, Harness, open_harness, settings_for

TEMPLATE, TEMPLATE_NODE = 9000, "pve1"  # debian-12-template on shared ceph
FOREIGN, FOREIGN_NODE = 200, "pve1"  # Other-Team's running VM


async def clone(h: Harness, name: str = "vle-test") -> int:
    """A linked clone of the template in our pool; returns its vmid."""
    newid = await h.client.next_vmid()
    await h.client.clone_vm(TEMPLATE_NODE, TEMPLATE, newid, name=name)
    return newid


async def test_outside_pool_refused_before_any_request(h: Harness) -> None:
    calls = [
        h.client.vm_status(FOREIGN_NODE, FOREIGN),
        h.client.vm_config(FOREIGN_NODE, FOREIGN),
        h.client.stop_vm(FOREIGN_NODE, FOREIGN),
        h.client.delete_vm(FOREIGN_NODE, FOREIGN),
        h.client.clone_vm(FOREIGN_NODE, FOREIGN, 5555),
        h.client.ha_add(FOREIGN),
        h.client.get_ipv4(FOREIGN_NODE, FOREIGN),
    ]
    for call in calls:
        with pytest.raises(OutsidePool) as info:
            await call
        assert info.value.vmid == FOREIGN
    vm_paths = [path for (_method, path) in h.sent.requests if "/qemu/" in path]
    assert vm_paths == []
    assert h.sent.count("POST", "/cluster/ha/resources") == 0
    assert h.sent.count("GET", "/pools") == len(calls)  # each miss re-reads the pool only


async def test_two_pools_never_see_each_other(h: Harness) -> None:
    stack: list[httpx.AsyncClient] = []
    settings = settings_for(h.sim, ADMIN_TOKEN, pool="Other-Team")
    other = await open_harness(h.sim, settings, stack)
    try:
        assert (await other.client.vm_status(FOREIGN_NODE, FOREIGN)).vmid == FOREIGN
        with pytest.raises(OutsidePool):
            await other.client.vm_status(TEMPLATE_NODE, TEMPLATE)
        with pytest.raises(OutsidePool):
            await h.client.vm_status(FOREIGN_NODE, FOREIGN)
        theirs = {r.vmid for r in await other.client.pool_vms()}
        ours = {r.vmid for r in await h.client.pool_vms()}
        assert theirs == {200, 201, 202}
        assert ours == {9000, 9001, 9002}
    finally:
        await stack[0].aclose()


async def test_clone_passes_pool_and_joins_membership(h: Harness) -> None:
    newid = await h.client.next_vmid()
    status = await h.client.clone_vm(TEMPLATE_NODE, TEMPLATE, newid, name="vle-clone-1")
    assert status.type == "qmclone"
    assert status.exitstatus == "OK"
    body = h.sent.bodies[("POST", f"/nodes/{TEMPLATE_NODE}/qemu/{TEMPLATE}/clone")]
    assert "pool=OpenVLE-VMs" in body
    assert newid in h.client.pool_members
    members = {m.vmid for m in (await h.client.get_pool()).members}
    assert newid in members
    config = await h.client.vm_config(TEMPLATE_NODE, newid)
    assert config.name == "vle-clone-1"
    assert not config.template


async def test_power_cycle_waits_for_state(h: Harness) -> None:
    vmid = await clone(h)
    assert (await h.client.start_vm(TEMPLATE_NODE, vmid)).status == "running"
    assert (await h.client.suspend_vm(TEMPLATE_NODE, vmid)).qmpstatus == "paused"
    assert (await h.client.resume_vm(TEMPLATE_NODE, vmid)).qmpstatus == "running"
    assert (await h.client.reboot_vm(TEMPLATE_NODE, vmid)).status == "running"
    assert (await h.client.shutdown_vm(TEMPLATE_NODE, vmid)).status == "stopped"


async def test_ha_managed_start_waits_for_the_lrm(h: Harness) -> None:
    vmid = await clone(h)
    await h.client.ha_add(vmid, state="stopped")
    assert f"vm:{vmid}" in {r.sid for r in await h.client.ha_resources()}
    h.sim.cluster.autotick = False  # no CRM/LRM round until we run one
    start = asyncio.create_task(h.client.start_vm(TEMPLATE_NODE, vmid))
    await asyncio.sleep(0.1)
    assert not start.done()  # the hastart task ended, but the VM is not running yet
    await h.sim.cluster.ha_round()
    status = await start
    assert status.status == "running"
    assert status.ha.managed
    h.sim.cluster.autotick = True
    assert (await h.client.stop_vm(TEMPLATE_NODE, vmid)).status == "stopped"
    await h.client.ha_remove(vmid)
    assert f"vm:{vmid}" not in {r.sid for r in await h.client.ha_resources()}


async def test_an_ha_group_on_pve_9_is_a_typed_validation_error() -> None:
    async with run_simulator(version="9.1", time_scale=0.01) as sim:
        stack: list[httpx.AsyncClient] = []
        h = await open_harness(sim, settings_for(sim), stack)
        try:
            vmid = await clone(h)
            with pytest.raises(HaGroupsUnsupported, match="no HA groups") as info:
                await h.client.ha_add(vmid, state="stopped", group="lab")
            resources = {r.sid for r in await h.client.ha_resources()}
        finally:
            for http in stack:
                await http.aclose()
    assert isinstance(info.value, ProxmoxValidationError)
    assert info.value.errors == {"group": "not supported on PVE 9"}
    assert f"vm:{vmid}" not in resources


async def test_ha_state_never_reached_is_a_timeout(h: Harness) -> None:
    vmid = await clone(h)
    await h.client.ha_add(vmid, state="stopped")
    h.sim.cluster.autotick = False  # the CRM/LRM never acts
    with pytest.raises(ProxmoxTaskTimeout, match="did not reach") as info:
        await h.client.start_vm(TEMPLATE_NODE, vmid, task_timeout=0.2)
    assert info.value.upid.split(":")[5] == "hastart"
    assert (await h.client.vm_status(TEMPLATE_NODE, vmid)).status == "stopped"


async def test_wrong_node_is_not_found(h: Harness) -> None:
    await h.client.cluster_resources("vm")
    with pytest.raises(ProxmoxNotFound, match="does not exist"):
        await h.client.vm_status("pve2", TEMPLATE)


async def test_locked_vm_is_conflict(h: Harness) -> None:
    vmid = await clone(h)
    h.sim.cluster.vms[vmid].config["lock"] = "backup"  # as a running backup job holds it
    with pytest.raises(ProxmoxConflict) as info:
        await h.client.update_vm_config(TEMPLATE_NODE, vmid, {"description": "x"})
    assert info.value.lock == "backup"


async def test_stale_digest_is_conflict_and_bad_value_is_validation(h: Harness) -> None:
    vmid = await clone(h)
    config = await h.client.vm_config(TEMPLATE_NODE, vmid)
    await h.client.update_vm_config(TEMPLATE_NODE, vmid, {"cores": 4}, digest=config.digest)
    with pytest.raises(ProxmoxConflict, match="checksum mismatch"):
        await h.client.update_vm_config(TEMPLATE_NODE, vmid, {"cores": 2}, digest=config.digest)
    with pytest.raises(ProxmoxValidationError) as info:
        await h.client.update_vm_config(TEMPLATE_NODE, vmid, {"name": "under_score"})
    assert "name" in info.value.errors


async def test_failed_task_raises_with_exitstatus_and_log(h: Harness) -> None:
    h.sim.faults.add("task_fail", "qmclone")
    newid = await h.client.next_vmid()
    with pytest.raises(ProxmoxTaskFailed) as info:
        await h.client.clone_vm(TEMPLATE_NODE, TEMPLATE, newid)
    assert info.value.exitstatus not in {"OK", ""}
    assert info.value.log_tail
    assert info.value.log_tail[-1].startswith("TASK ERROR")


async def test_lock_timeout_task_is_flagged(h: Harness) -> None:
    h.sim.faults.add("lock_timeout", "qmclone")
    newid = await h.client.next_vmid()
    with pytest.raises(ProxmoxTaskFailed) as info:
        await h.client.clone_vm(TEMPLATE_NODE, TEMPLATE, newid)
    assert info.value.lock_timeout


async def test_wait_task_times_out_instead_of_returning_none() -> None:
    async with run_simulator(version="9.1", time_scale=1.0) as sim:
        stack: list[httpx.AsyncClient] = []
        h = await open_harness(sim, settings_for(sim), stack)
        try:
            newid = await h.client.next_vmid()
            with pytest.raises(ProxmoxTaskTimeout) as info:
                await h.client.clone_vm(
                    TEMPLATE_NODE, TEMPLATE, newid, full=True, task_timeout=0.05
                )
            status = await h.client.task_status(info.value.upid)
            assert status.status == "running"
        finally:
            await stack[0].aclose()


async def test_migrate_checks_preconditions(h: Harness) -> None:
    vmid = await clone(h)
    await h.client.start_vm(TEMPLATE_NODE, vmid)
    with pytest.raises(MigrationBlocked, match="online"):
        await h.client.migrate_vm(TEMPLATE_NODE, vmid, "pve2")
    assert h.sent.count("POST", f"/nodes/{TEMPLATE_NODE}/qemu/{vmid}/migrate") == 0
    status = await h.client.migrate_vm(TEMPLATE_NODE, vmid, "pve2", online=True)
    assert status.exitstatus == "OK"
    assert h.client.pool_members[vmid] == "pve2"
    assert (await h.client.vm_status("pve2", vmid)).status == "running"


async def test_ha_migrate_waits_until_the_vm_arrives(h: Harness) -> None:
    vmid = await clone(h)
    await h.client.ha_add(vmid, state="stopped")
    h.sim.cluster.autotick = False  # the hamigrate task ends; the CRM has not moved it
    move = asyncio.create_task(h.client.migrate_vm(TEMPLATE_NODE, vmid, "pve3"))
    await asyncio.sleep(0.1)
    assert not move.done()
    assert h.sim.cluster.vms[vmid].node == TEMPLATE_NODE
    for _ in range(5):
        await h.sim.cluster.ha_round()
        if h.sim.cluster.vms[vmid].node == "pve3":
            break
    status = await move
    assert status.type == "hamigrate"
    assert h.client.pool_members[vmid] == "pve3"
    h.sim.cluster.autotick = True


async def test_get_ipv4_and_its_reasons(h: Harness) -> None:
    vmid = await clone(h)
    stopped = await h.client.get_ipv4(TEMPLATE_NODE, vmid)
    assert stopped.address is None
    assert stopped.reason == VM_DOWN
    await h.client.start_vm(TEMPLATE_NODE, vmid)
    h.sim.cluster.set_agent(vmid, "stopped")
    assert (await h.client.get_ipv4(TEMPLATE_NODE, vmid)).reason == AGENT_DOWN
    h.sim.cluster.set_agent(vmid, "running")
    found = await h.client.get_ipv4(TEMPLATE_NODE, vmid)
    assert found.address is not None
    assert found.reason is None
    h.sim.cluster.set_agent(vmid, "none")
    assert (await h.client.get_ipv4(TEMPLATE_NODE, vmid)).reason == NO_AGENT


async def test_pool_moves_need_pool_allocate(h: Harness) -> None:
    vmid = await clone(h)
    with pytest.raises(ProxmoxPermissionDenied) as info:
        await h.client.remove_from_pool([vmid])
    assert info.value.acl_path == "/pool/OpenVLE-VMs"
    assert info.value.privileges == ("Pool.Allocate",)
    stack: list[httpx.AsyncClient] = []
    admin = await open_harness(h.sim, settings_for(h.sim, ADMIN_TOKEN), stack)
    try:
        await admin.client.remove_from_pool([vmid])
        with pytest.raises(OutsidePool):
            await admin.client.vm_status(TEMPLATE_NODE, vmid)
        await admin.client.add_to_pool([vmid])
        assert (await admin.client.vm_status(TEMPLATE_NODE, vmid)).vmid == vmid
    finally:
        await stack[0].aclose()


async def test_delete_forgets_the_vm(h: Harness) -> None:
    vmid = await clone(h)
    status = await h.client.delete_vm(TEMPLATE_NODE, vmid)
    assert status.type == "qmdestroy"
    assert vmid not in h.sim.cluster.vms
    with pytest.raises(OutsidePool):
        await h.client.vm_status(TEMPLATE_NODE, vmid)


async def test_live_migration_with_local_disks_needs_the_flag(h: Harness) -> None:
    newid = await h.client.next_vmid()
    await h.client.clone_vm("pve2", 9002, newid)  # kali template on local-lvm
    await h.client.start_vm("pve2", newid)
    with pytest.raises(MigrationBlocked, match="local disks"):
        await h.client.migrate_vm("pve2", newid, "pve1", online=True)
    assert h.sent.count("POST", f"/nodes/pve2/qemu/{newid}/migrate") == 0


async def test_vm_locked_by_a_running_migration_is_conflict() -> None:
    async with run_simulator(version="9.1", time_scale=0.25) as sim:
        stack: list[httpx.AsyncClient] = []
        h = await open_harness(sim, settings_for(sim), stack)
        try:
            vmid = await clone(h)
            move = asyncio.create_task(h.client.migrate_vm(TEMPLATE_NODE, vmid, "pve2"))
            for _ in range(200):  # until the migration task holds its config lock
                if sim.cluster.vms[vmid].config.get("lock") == "migrate":
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(ProxmoxConflict) as info:
                await h.client.update_vm_config(TEMPLATE_NODE, vmid, {"description": "x"})
            assert info.value.lock == "migrate"
            assert (await move).exitstatus == "OK"
        finally:
            await stack[0].aclose()
