"""Create, template, task log, agent calls and the nextid race against the simulator."""

from __future__ import annotations

import pytest

from openvle_core.proxmox import ProxmoxError, ProxmoxTaskFailed
from tests.proxmox.simclient import Harness

NODE, TEMPLATE = "pve1", 9000


async def test_create_vm_lands_in_our_pool(h: Harness) -> None:
    vmid = await h.client.next_vmid()
    options = {"name": "vle-created", "memory": 1024, "cores": 1, "net0": "virtio,bridge=vmbr0"}
    status = await h.client.create_vm(NODE, vmid, options)
    assert status.type == "qmcreate"
    body = h.sent.bodies[("POST", f"/nodes/{NODE}/qemu")]
    assert "pool=OpenVLE-VMs" in body
    assert vmid in {m.vmid for m in (await h.client.get_pool()).members}
    config = await h.client.vm_config(NODE, vmid)
    assert config.name == "vle-created"
    assert config.net0_mac is not None


async def test_full_clone_then_convert_to_template(h: Harness) -> None:
    newid = await h.client.next_vmid()
    await h.client.clone_vm(NODE, TEMPLATE, newid, name="vle-derived", full=True)
    assert not (await h.client.vm_config(NODE, newid)).template
    status = await h.client.convert_to_template(NODE, newid)
    assert status.type == "qmtemplate"
    assert (await h.client.vm_config(NODE, newid)).template
    assert (await h.client.vm_status(NODE, newid)).template


async def test_task_log_of_a_finished_clone(h: Harness) -> None:
    newid = await h.client.next_vmid()
    status = await h.client.clone_vm(NODE, TEMPLATE, newid)
    lines = await h.client.task_log(status.upid)
    assert lines[-1] == "TASK OK"
    assert (await h.client.task_log_tail(status.upid, 1)) == ["TASK OK"]
    assert (await h.client.task_status(status.upid)).succeeded


async def test_agent_ping_and_shutdown(h: Harness) -> None:
    newid = await h.client.next_vmid()
    await h.client.clone_vm(NODE, TEMPLATE, newid)
    await h.client.start_vm(NODE, newid)
    await h.client.agent_ping(NODE, newid)
    interfaces = await h.client.agent_interfaces(NODE, newid)
    assert any(i.name == "lo" for i in interfaces)
    h.sim.cluster.set_agent(newid, "stopped")
    with pytest.raises(ProxmoxError, match="guest agent is not running"):
        await h.client.agent_ping(NODE, newid)
    h.sim.cluster.set_agent(newid, "running")
    await h.client.agent_shutdown(NODE, newid)


async def test_nextid_race_surfaces_as_a_failed_task(h: Harness) -> None:
    h.sim.faults.add("nextid_collision", n=1)
    contested = await h.client.next_vmid()  # another client clones into it meanwhile
    with pytest.raises(ProxmoxTaskFailed, match="already exists") as info:
        await h.client.clone_vm(NODE, TEMPLATE, contested)
    assert not info.value.lock_timeout
    assert contested not in h.client.pool_members  # the winner's VM is not ours
    retry_id = await h.client.next_vmid()
    assert (await h.client.clone_vm(NODE, TEMPLATE, retry_id)).succeeded
