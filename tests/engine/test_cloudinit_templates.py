"""Cloud-init addresses (allocation, exhaustion, release) and template operations."""

from __future__ import annotations

from typing import Any

import pytest

from openvle_core.db.models import IpAllocation, Template
from openvle_core.db.session import transaction
from openvle_core.ipam.allocator import NetworkExhausted
from openvle_core.metrics import REGISTRY
from openvle_core.runtime import Runtime
from openvle_core.templates.errors import TemplateInUse
from openvle_core.templates.service import (
    request_create_template,
    request_delete_template,
    request_update_template,
)
from openvle_core.vms.service import request_clone, request_delete
from openvle_pvesim import Simulator
from tests.engine.kit import (
    SHARED_TEMPLATE,
    MakeRuntime,
    add_template,
    all_rows,
    get_vm,
    pool_vms,
    run,
    wait_op,
)

CI: dict[str, Any] = {
    "enabled": True,
    "network": "10.30.0.0",
    "subnet": "29",  # hosts .1-.6
    "gateway": "10.30.0.1",
    "excluded_ips": "10.30.0.2-10.30.0.4",  # leaves .5 and .6
    "dns": "10.30.0.53 9.9.9.9",
    "ciuser": "student",
    "cipassword": "s3cret",
}


def config_puts() -> float:
    """PUT /nodes/{node}/qemu/{vmid}/config requests counted by the Proxmox metrics."""
    value = REGISTRY.get_sample_value(
        "openvle_proxmox_requests_total",
        {"method": "PUT", "endpoint": "/nodes/{node}/qemu/{vmid}/config", "status": "200"},
    )
    return value or 0.0


async def test_cloud_init_address_is_written_in_the_one_config_update(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    async with make_runtime(cloudinit=CI) as runtime:
        template_id = await add_template(runtime, *SHARED_TEMPLATE)

        async def clone() -> Any:
            return await run(
                runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id)
            )

        puts_before = config_puts()
        first, second = await clone(), await clone()
        assert config_puts() - puts_before == 2  # one config update per new VM
        assert [first.state, second.state] == ["succeeded", "succeeded"]
        vm = await get_vm(runtime, str(first.target_id))
        assert vm is not None
        assert vm.ipv4 == "10.30.0.5"
        config = sim.cluster.vms[vm.vmid or 0].config
        assert config["ipconfig0"] == "ip=10.30.0.5/29,gw=10.30.0.1"
        assert config["nameserver"] == "10.30.0.53 9.9.9.9"
        assert config["ciuser"] == "student"
        assert "cipassword" in config
        assert (await get_vm(runtime, str(second.target_id))).ipv4 == "10.30.0.6"  # type: ignore[union-attr]
        with pytest.raises(NetworkExhausted, match=r"10\.30\.0\.0/29"):  # refused at request time
            async with transaction(runtime.sessions) as session:
                await request_clone(session, runtime.settings, template_id=template_id)
        assert len(pool_vms(sim)) == 5  # nothing was cloned for it
        deleted = await run(runtime, lambda s: request_delete(s, str(first.target_id)))
        assert deleted.state == "succeeded", deleted.error_message
        assert {a.address for a in await all_rows(runtime, IpAllocation)} == {"10.30.0.6"}
        # One address left: two requests staged before either allocates both pass the
        # request-time check; the engine's allocation (unique address) decides.
        async with transaction(runtime.sessions) as session:
            ops = [
                await request_clone(session, runtime.settings, template_id=template_id)
                for _ in range(2)
            ]
        for op in ops:
            await runtime.queue.enqueue(op.id)
        done = [await wait_op(runtime, op.id) for op in ops]
        assert sorted(op.state for op in done) == ["failed", "succeeded"]
        lost = next(op for op in done if op.state == "failed")
        won = next(op for op in done if op.state == "succeeded")
        assert lost.error_type == "NetworkExhausted"
        assert "10.30.0.0/29" in (lost.error_message or "")
        assert (await get_vm(runtime, str(won.target_id))).ipv4 == "10.30.0.5"  # type: ignore[union-attr]
        assert len(pool_vms(sim)) == 5  # the loser cloned nothing


async def test_template_lifecycle(runtime: Runtime, sim: Simulator) -> None:
    base_id = await add_template(runtime, *SHARED_TEMPLATE)
    derived = await run(
        runtime, lambda s: request_create_template(s, from_template_id=base_id, name="deb-copy")
    )
    assert derived.state == "succeeded", derived.error_message
    new_id = (derived.result or {})["template_id"]
    rows = {t.id: t for t in await all_rows(runtime, Template)}
    new = rows[new_id]
    assert new.name == "deb-copy"
    assert sim.cluster.vms[new.vmid].is_template
    assert "base-" in sim.cluster.vms[new.vmid].config["scsi0"]  # a full copy, converted
    updated = await run(
        runtime,
        lambda s: request_update_template(s, new_id, cores=4, memory_mb=4096, description="x"),
    )
    assert updated.state == "succeeded", updated.error_message
    config = sim.cluster.vms[new.vmid].config
    assert (int(config["cores"]), str(config["memory"]), config["description"]) == (4, "4096", "x")
    clone = await run(runtime, lambda s: request_clone(s, runtime.settings, template_id=new_id))
    assert clone.state == "succeeded", clone.error_message
    try:
        await run(runtime, lambda s: request_delete_template(s, new_id))
    except TemplateInUse:
        pass
    else:
        raise AssertionError("a template with linked clones was deleted")
    assert (await run(runtime, lambda s: request_delete(s, str(clone.target_id)))).state == (
        "succeeded"
    )
    gone = await run(runtime, lambda s: request_delete_template(s, new_id))
    assert gone.state == "succeeded", gone.error_message
    assert new.vmid not in sim.cluster.vms
    assert new_id not in {t.id for t in await all_rows(runtime, Template)}


async def test_convert_a_pool_vm_into_a_template(runtime: Runtime, sim: Simulator) -> None:
    base_id = await add_template(runtime, *SHARED_TEMPLATE)
    clone = await run(runtime, lambda s: request_clone(s, runtime.settings, template_id=base_id))
    vm = await get_vm(runtime, str(clone.target_id))
    assert vm is not None
    assert vm.vmid is not None
    vmid = vm.vmid
    op = await run(runtime, lambda s: request_create_template(s, source_vmid=vmid, name="golden"))
    assert op.state == "succeeded", op.error_message
    assert sim.cluster.vms[vmid].is_template
    assert sim.cluster.vms[vmid].name == "golden"
    templates = {t.vmid: t for t in await all_rows(runtime, Template)}
    assert templates[vmid].status == "available"
    assert templates[vmid].name == "golden"


async def test_template_delete_refused_by_proxmox_while_an_unknown_clone_uses_it(
    runtime: Runtime, sim: Simulator
) -> None:
    """A linked clone the DB does not know (made outside OpenVLE): PVE refuses, the
    operation fails with TemplateInUse and the template stays available."""
    base_id = await add_template(runtime, *SHARED_TEMPLATE)
    derived = await run(
        runtime, lambda s: request_create_template(s, from_template_id=base_id, name="shared")
    )
    assert derived.state == "succeeded", derived.error_message
    new_id = (derived.result or {})["template_id"]
    vmid = (derived.result or {})["vmid"]
    node = (derived.result or {})["node"]
    await runtime.proxmox.clone_vm(node, vmid, 4300, name="made-by-hand")
    op = await run(runtime, lambda s: request_delete_template(s, new_id))
    assert op.state == "failed"
    assert op.error_type == "TemplateInUse"
    assert vmid in sim.cluster.vms
    rows = {t.id: t for t in await all_rows(runtime, Template)}
    assert rows[new_id].status == "available"
