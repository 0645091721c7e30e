"""Who sees and stops which task, and how token users are listed (pve-manager Tasks.pm,
Cluster.pm `tasks`), over HTTP."""

from __future__ import annotations

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.kit import ADMIN_TOKEN, CI_TOKEN, MakeSim, pve
from tests.pvesim.modelkit import error, ok, run

VIEWER = "viewer@pve!tok"


def add_viewer(sim: Simulator) -> None:
    """A token with VM.PowerMgmt on VM 200 and nothing on nodes or `/`."""
    access = sim.cluster.access
    access.add_role("Power", ["VM.PowerMgmt", "VM.Audit"])
    access.add_token(VIEWER, "s3cret", privsep=False)
    access.set_acl("/vms/200", "viewer@pve", "Power")
    sim.tokens[VIEWER] = "s3cret"


async def test_node_auditors_see_every_task_and_others_only_their_own(sim: Simulator) -> None:
    add_viewer(sim)
    async with pve(sim, ADMIN_TOKEN) as admin, pve(sim, CI_TOKEN) as ci, pve(sim, VIEWER) as v:
        by_ci = (await run(ci, await ci.post("/nodes/pve1/qemu/9000/status/start")))["upid"]
        by_viewer = (await run(v, await v.post("/nodes/pve1/qemu/200/status/stop")))["upid"]
        by_root = await sim.cluster.tasks.spawn("pve1", "qmstart", "200", "root@pam", noop)
        everything = {by_ci, by_viewer, by_root}
        for auditor in (admin, ci):  # both hold Sys.Audit on /nodes/pve1
            listed = await ok(await auditor.get("/nodes/pve1/tasks"))
            assert {t["upid"] for t in listed} == everything
        own = await ok(await v.get("/nodes/pve1/tasks"))
        assert [t["upid"] for t in own] == [by_viewer]
        assert (own[0]["user"], own[0]["tokenid"]) == ("viewer@pve", "tok")
        denied = await v.get(f"/nodes/pve1/tasks/{by_root}/status")
        assert error(denied, 403) == "Permission check failed (/nodes/pve1, Sys.Audit)"


async def noop(_ctx: object) -> None:
    return None


async def test_task_lists_split_token_users(ci: httpx.AsyncClient) -> None:
    upid = (await run(ci, await ci.post("/nodes/pve1/qemu/9000/status/start")))["upid"]
    for path in ("/nodes/pve1/tasks", "/cluster/tasks"):
        item = next(t for t in await ok(await ci.get(path)) if t["upid"] == upid)
        assert (item["user"], item["tokenid"]) == ("openvle@pve", "ci")
    mine = await ok(await ci.get("/nodes/pve1/tasks", params={"userfilter": "OPENVLE@pve"}))
    assert [t["upid"] for t in mine] == [upid]


async def test_cluster_tasks_need_sys_audit_on_root_to_see_others(sim: Simulator) -> None:
    """Without Sys.Audit on `/` a token sees no task at all: the split user is not its id."""
    add_viewer(sim)
    async with pve(sim, ADMIN_TOKEN) as admin, pve(sim, VIEWER) as viewer:
        by_admin = await run(admin, await admin.post("/nodes/pve1/qemu/9000/status/start"))
        by_viewer = await run(viewer, await viewer.post("/nodes/pve1/qemu/200/status/stop"))
        listed = {t["upid"] for t in await ok(await admin.get("/cluster/tasks"))}
        assert {by_admin["upid"], by_viewer["upid"]} <= listed
        assert await ok(await viewer.get("/cluster/tasks")) == []


async def test_stopping_another_owners_task_needs_sys_modify(make_sim: MakeSim) -> None:
    async with make_sim(time_scale=1.0) as sim, pve(sim, ADMIN_TOKEN) as admin:
        upid = await ok(await admin.post("/nodes/pve1/qemu/200/status/shutdown"))
        async with pve(sim, CI_TOKEN) as ci:  # Sys.Audit on /nodes, but no Sys.Modify
            refused = await ci.delete(f"/nodes/pve1/tasks/{upid}")
            assert error(refused, 403) == "Permission check failed (/nodes/pve1, Sys.Modify)"
            assert (await ok(await ci.get(f"/nodes/pve1/tasks/{upid}/status")))["status"] == (
                "running"
            )
            active = await ok(await ci.get("/nodes/pve1/tasks", params={"source": "active"}))
            assert [(t["upid"], t["status"]) for t in active] == [(upid, "RUNNING")]
        assert await ok(await admin.delete(f"/nodes/pve1/tasks/{upid}")) is None
