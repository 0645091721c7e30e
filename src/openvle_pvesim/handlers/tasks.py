"""Task status, log and lists: /nodes/{node}/tasks[/{upid}/status|log]."""

from __future__ import annotations

from typing import Any

from openvle_pvesim.contract import Request, Response, route
from openvle_pvesim.errors import param_error
from openvle_pvesim.handlers.cluster import may_see_task
from openvle_pvesim.tasks import UPID_RE, Task


def find_task(req: Request) -> Task:
    """The task of {upid} on {node}; owner or Sys.Audit on the node may read it."""
    upid = str(req.params["upid"])
    if not UPID_RE.match(upid):
        raise param_error(upid="unable to parse worker upid")
    task = req.cluster.tasks.tasks.get(upid)
    if task is None or task.node != req.params["node"]:
        raise param_error(upid="no such task")
    if not may_see_task(req, task.user, task.node):
        req.principal.check(f"/nodes/{task.node}", ["Sys.Audit"])
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
    task = find_task(req)
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
    if "userfilter" in params and str(params["userfilter"]) not in task.user:
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
    """Tasks of the node the caller may see, newest first, paged by start/limit."""
    node = req.cluster.node(str(req.params["node"])).name
    found = [
        t
        for t in req.cluster.tasks.tasks.values()
        if t.node == node and may_see_task(req, t.user, t.node) and matches(t, req.params)
    ]
    found.sort(key=lambda t: t.starttime, reverse=True)
    start = int(req.params.get("start", 0))
    limit = int(req.params.get("limit", 50))
    return Response([t.list_item() for t in found[start : start + limit]], {"total": len(found)})
