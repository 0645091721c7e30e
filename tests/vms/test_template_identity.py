"""Templates have an identity too: deleting one destroys it, updating one rewrites it.

A template row records its guest's vmgenid and creation time when it is made (derived,
converted, or imported by the sync); an update or a delete confirms them right before it
changes the guest, and a template the colleague put on the vmid is left alone.
"""

from __future__ import annotations

import pytest

from openvle_core.db.enums import GuestIdentity
from openvle_core.db.models import Template
from openvle_core.guests.identity import meta_ctime
from openvle_core.runtime import Runtime
from openvle_core.templates.service import (
    request_create_template,
    request_delete_template,
    request_update_template,
)
from openvle_pvesim import Simulator
from tests.support.colleague import Colleague
from tests.vms.conftest import SETUPS, Setup
from tests.vms.kit import SHARED_TEMPLATE, add_template, all_rows, run


@pytest.fixture
def setup() -> Setup:
    return SETUPS["inprocess-sqlite-9.1"]


async def derived(runtime: Runtime, sim: Simulator) -> Template:
    base_id = await add_template(runtime, *SHARED_TEMPLATE)
    op = await run(
        runtime, lambda s: request_create_template(s, from_template_id=base_id, name="deb-copy")
    )
    assert op.state == "succeeded", op.error_message
    rows = {t.id: t for t in await all_rows(runtime, Template)}
    return rows[(op.result or {})["template_id"]]


async def test_a_derived_template_records_its_evidence(runtime: Runtime, sim: Simulator) -> None:
    template = await derived(runtime, sim)
    config = sim.cluster.vms[template.vmid].config
    assert template.identity == GuestIdentity.OURS
    assert template.identity_vmgenid == config["vmgenid"]
    assert template.identity_ctime == meta_ctime(config["meta"])


async def test_a_foreign_template_on_the_vmid_is_neither_updated_nor_deleted(
    runtime: Runtime, sim: Simulator
) -> None:
    template = await derived(runtime, sim)
    async with Colleague(sim) as colleague:
        await colleague.remove_vm(template.vmid)
        await colleague.create_vm(template.vmid, template.name, node=template.node or "pve1")
        await colleague.make_template(template.vmid)
    foreign = dict(sim.cluster.vms[template.vmid].config)

    update = await run(runtime, lambda s: request_update_template(s, template.id, cores=8))
    delete = await run(runtime, lambda s: request_delete_template(s, template.id))

    for op in (update, delete):
        assert (op.state, op.error_type) == ("failed", "IdentityMismatch")
        assert f"it is not template {template.name}" in (op.error_message or "")
    assert sim.cluster.vms[template.vmid].config == foreign
    rows = {t.id: t for t in await all_rows(runtime, Template)}
    assert (rows[template.id].status, rows[template.id].cores) == (
        template.status,
        template.cores,
    )
