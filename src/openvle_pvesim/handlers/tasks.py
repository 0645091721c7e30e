"""Task status, log and lists: /nodes/{node}/tasks[/{upid}/status|log]."""

from __future__ import annotations

from typing import Any

from openvle_pvesim.contract import Request, Response, route
from openvle_pvesim.errors import param_error
from openvle_pvesim.handlers.common import task_user
from openvle_pvesim.tasks import UPID_RE, Task


def find_task(req: Request, priv: str = "Sys.Audit") -> Task:
    """The task of {upid} on {node}; its owner, or `priv` on the node (pve-manager Tasks.pm:
    Sys.Audit to read a status or log, Sys.Modify to stop someone else's task)."""
    upid = str(req.params["upid"])
    if not UPID_RE.match(upid):
        raise param_error(upid="unable to parse worker upid")
    task = req.cluster.tasks.tasks.get(upid)
    if task is None or task.node != req.params["node"]:
        raise param_error(upid="no such task")
    if not task.owned_by(task_user(req.principal)):
        req.principal.check(f"/nodes/{task.node}", [priv])
    return task


@route("GET", "/nodes/{node}/tasks/{upid}/status")
async def task_status(req: Request) -> dict[str, Any]:
    return find_task(req).status_data()


@route("GET", "/nodes/{node}/tasks/{upid}/log")
async def task_log(req: Request) -> Response:
    """Lines `{n, t}` (1-based) from `start`, at most `limit`, with `total` beside."""
    task = find_task(req)
    start = int(req.params.get("start", 0))
    limit = int(req.params.get("limit", 50))
    lines = task.log or ["no content"]
    page = [{"n": i + 1, "t": lines[i]} for i in range(start, min(len(lines), start + limit))]
    return Response(page, {"total": len(lines)})


@route("DELETE", "/nodes/{node}/tasks/{upid}")
async def stop_task(req: Request) -> None:
    task = find_task(req, "Sys.Modify")
    req.cluster.tasks.stop(task.upid)


def matches(task: Task, params: dict[str, Any]) -> bool:
    """The filters of GET /nodes/{node}/tasks."""
    source = params.get("source", "archive")
    if (source == "archive" and task.endtime is None) or (
        source == "active" and task.endtime is not None
    ):
        return False
    if "vmid" in params and task.id != str(params["vmid"]):
        return False
    if "typefilter" in params and task.type != params["typefilter"]:
        return False
    if "userfilter" in params and str(params["userfilter"]).lower() not in task.owner()[0].lower():
        return False
    if params.get("errors") and task.exitstatus in (None, "OK"):
        return False
    if "since" in params and task.starttime < int(params["since"]):
        return False
    if "until" in params and task.starttime > int(params["until"]):
        return False
    wanted = params.get("statusfilter")
    if wanted:
        state = "ok" if task.exitstatus == "OK" else "error"
        state = "active" if task.endtime is None else state
        return state in str(wanted).split(",")
    return True


@route("GET", "/nodes/{node}/tasks")
async def list_tasks(req: Request) -> Response:
    """Tasks of the node the caller may see, newest first, paged by start/limit.

    Tasks.pm `node_tasks`: Sys.Audit on /nodes/{node} shows every task of the node,
    otherwise the caller's own (a user's include its tokens').
    """
    node = req.cluster.node(str(req.params["node"])).name
    auditor = req.principal.has(f"/nodes/{node}", "Sys.Audit")
    me = task_user(req.principal)
    found = [
        t
        for t in req.cluster.tasks.tasks.values()
        if t.node == node and (auditor or t.owned_by(me)) and matches(t, req.params)
    ]
    found.sort(key=lambda t: t.starttime, reverse=True)
    start = int(req.params.get("start", 0))
    limit = int(req.params.get("limit", 50))
    running = req.params.get("source") in ("active", "all")
    page = [t.list_item(running) for t in found[start : start + limit]]
    return Response(page, {"total": len(found)})
