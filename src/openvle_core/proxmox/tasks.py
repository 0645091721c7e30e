"""Tasks: parse UPIDs, wait for a task with backoff, fetch the log tail of a failure.

`wait_task` returns the final `TaskStatus` or raises `ProxmoxTaskFailed` /
`ProxmoxTaskTimeout`; there is no "timed out, here is None" outcome.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from openvle_core.proxmox.errors import ProxmoxTaskFailed, ProxmoxTaskTimeout
from openvle_core.proxmox.models import TaskLogLine, TaskStatus, parse
from openvle_core.proxmox.transport import ApiCaller

_UPID_RE = re.compile(
    r"^UPID:(?P<node>[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):(?P<pid>[0-9A-Fa-f]{8}):"
    r"(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<starttime>[0-9A-Fa-f]{8}):(?P<type>[^:\s/]+):"
    r"(?P<id>[^:\s/]*):(?P<user>[^:\s/]+):$"
)
STATUS_PATH = "/nodes/{node}/tasks/{upid}/status"
LOG_PATH = "/nodes/{node}/tasks/{upid}/log"
LOG_TAIL_LINES = 20
HA_TASK_TYPES = frozenset({"hastart", "hastop", "hamigrate", "hashutdown"})


@dataclass(frozen=True, slots=True)
class Upid:
    """The parts of a UPID (`UPID:node:pid:pstart:starttime:type:id:user:`)."""

    raw: str
    node: str
    type: str
    id: str
    user: str
    starttime: int

    @classmethod
    def parse(cls, upid: str) -> Upid:
        """Parse PVE's UPID format; ValueError if `upid` is not one."""
        match = _UPID_RE.match(upid)
        if match is None:
            raise ValueError(f"not a UPID: {upid!r}")
        return cls(
            raw=upid,
            node=match["node"],
            type=match["type"],
            id=match["id"],
            user=match["user"],
            starttime=int(match["starttime"], 16),
        )

    @property
    def is_ha(self) -> bool:
        """HA tasks (`hastart`, ...) end when the request is queued, not when it is done."""
        return self.type in HA_TASK_TYPES


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """How often to poll: starts at `first`, grows by `factor` up to `cap` seconds."""

    first: float = 0.1
    factor: float = 1.5
    cap: float = 2.0

    def next_delay(self, delay: float) -> float:
        """The delay after `delay`."""
        return min(self.cap, delay * self.factor)


async def task_status(api: ApiCaller, upid: str) -> TaskStatus:
    """GET the task status (on the node named in the UPID)."""
    node = Upid.parse(upid).node
    return parse(TaskStatus, await api.get(STATUS_PATH, node=node, upid=upid))


async def task_log(api: ApiCaller, upid: str, *, start: int = 0, limit: int = 50) -> list[str]:
    """The task log lines from `start` (0-based), at most `limit`."""
    node = Upid.parse(upid).node
    data = await api.get(LOG_PATH, {"start": start, "limit": limit}, node=node, upid=upid)
    return [parse(TaskLogLine, line).t for line in data]


async def log_tail(api: ApiCaller, upid: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last `lines` log lines (reads `total` from the envelope, then the tail)."""
    node = Upid.parse(upid).node
    head = await api.call("GET", LOG_PATH, {"start": 0, "limit": lines}, node=node, upid=upid)
    total = int(head.get("total") or len(head["data"]))
    if total <= lines:
        return [parse(TaskLogLine, line).t for line in head["data"]]
    return await task_log(api, upid, start=total - lines, limit=lines)


async def wait_task(
    api: ApiCaller,
    upid: str,
    timeout: float,  # noqa: ASYNC109 - a polling budget ending in ProxmoxTaskTimeout
    *,
    schedule: PollSchedule | None = None,
) -> TaskStatus:
    """Poll until the task stops: return it if OK/WARNINGS, else raise; raise on timeout."""
    schedule = schedule or PollSchedule()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = schedule.first
    while True:
        status = await task_status(api, upid)
        if status.status == "stopped":
            if status.succeeded:
                return status
            tail = await log_tail(api, upid)
            raise ProxmoxTaskFailed(upid, status.exitstatus or "unknown status", tail)
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise ProxmoxTaskTimeout(upid, timeout)
        await asyncio.sleep(min(delay, remaining))
        delay = schedule.next_delay(delay)


TASK_LIST_PATH = "/nodes/{node}/tasks"
TASK_LIST_LIMIT = 500
UNLISTED_TICKS = 3  # ticks a watched task may be missing from the list before it is asked


def task_succeeded(exitstatus: str | None) -> bool:
    """`OK` or `WARNINGS: n` (a warning is not a failure)."""
    return exitstatus == "OK" or (exitstatus or "").startswith("WARNINGS")


class TaskWatcher:
    """Waits for many tasks with one task list read per node and tick.

    Every task waited for on a node is served by one `GET /nodes/{node}/tasks?source=all
    &since=<oldest start>` per tick (a finished item carries its exit status in `status`),
    instead of one status poll per task. A task the list does not show for
    UNLISTED_TICKS ticks (a long list cut at its limit, a rotated log) is asked for by
    its status, so it is never waited for in vain; that read's error (`ProxmoxNotFound`
    for a task PVE no longer knows) goes to its waiter. A failed list read fails the
    waiters of that node, like a failed status poll did. The pause between reads grows
    from the schedule's first to its cap while tasks are waited for (a busy node is read
    every `cap` seconds, however many tasks run there).
    """

    def __init__(self, api: ApiCaller, schedule: PollSchedule) -> None:
        self._api = api
        self._schedule = schedule
        self._waiting: dict[str, dict[str, asyncio.Future[TaskStatus]]] = {}
        self._unlisted: dict[str, int] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}

    async def finished(self, upid: str) -> TaskStatus:
        """The task's status once it stopped (successful or not)."""
        node = Upid.parse(upid).node
        future: asyncio.Future[TaskStatus] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(node, {})
        waiting[upid] = future
        loop_task = self._loops.get(node)
        if loop_task is None or loop_task.done():
            self._loops[node] = asyncio.create_task(self._run(node), name=f"tasks:{node}")
        try:
            return await future
        finally:
            if waiting.get(upid) is future:
                del waiting[upid]
            self._unlisted.pop(upid, None)

    async def _run(self, node: str) -> None:
        waiting = self._waiting[node]
        delay = self._schedule.first
        while waiting:
            await asyncio.sleep(delay)
            try:
                await self._tick(node, waiting)
            except Exception as exc:  # the list failed for good (after retries)
                for future in waiting.values():
                    if not future.done():
                        future.set_exception(exc)
                waiting.clear()
                return
            delay = self._schedule.next_delay(delay)

    async def _tick(self, node: str, waiting: dict[str, asyncio.Future[TaskStatus]]) -> None:
        watched = [u for u, f in waiting.items() if not f.done()]
        if not watched:
            return
        since = min(Upid.parse(u).starttime for u in watched)
        params = {"source": "all", "since": since, "limit": TASK_LIST_LIMIT}
        data = await self._api.get(TASK_LIST_PATH, params, node=node)
        listed = {str(item.get("upid")): item for item in data if isinstance(item, dict)}
        for upid in watched:
            future = waiting.get(upid)
            if future is None or future.done():
                continue
            item = listed.get(upid)
            if item is None:
                self._unlisted[upid] = self._unlisted.get(upid, 0) + 1
                if self._unlisted[upid] >= UNLISTED_TICKS:
                    self._unlisted.pop(upid, None)
                    await self._ask(upid, future)
                continue
            self._unlisted.pop(upid, None)
            if item.get("endtime") is not None:
                future.set_result(_stopped(upid, item))

    async def _ask(self, upid: str, future: asyncio.Future[TaskStatus]) -> None:
        """One status read for a task the list does not show."""
        try:
            status = await task_status(self._api, upid)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if status.status == "stopped" and not future.done():
            future.set_result(status)


def _stopped(upid: str, item: dict[str, object]) -> TaskStatus:
    """The final status of a task from its task list item."""
    parts = upid.split(":")
    return TaskStatus(
        upid=upid,
        node=parts[1],
        pid=int(parts[2], 16),
        pstart=int(parts[3], 16),
        starttime=int(parts[4], 16),
        type=parts[5],
        id=parts[6],
        user=str(item.get("user") or parts[7]),
        tokenid=str(item["tokenid"]) if item.get("tokenid") else None,
        status="stopped",
        exitstatus=str(item.get("status") or "unknown status"),
    )


async def watch_task(
    watcher: TaskWatcher,
    api: ApiCaller,
    upid: str,
    timeout: float,  # noqa: ASYNC109 - a polling budget ending in ProxmoxTaskTimeout
) -> TaskStatus:
    """`wait_task` through a shared `TaskWatcher`: the final status if OK/WARNINGS, else
    `ProxmoxTaskFailed` with the log tail; `ProxmoxTaskTimeout` after `timeout`."""
    try:
        status = await asyncio.wait_for(watcher.finished(upid), timeout)
    except TimeoutError:
        raise ProxmoxTaskTimeout(upid, timeout) from None
    if task_succeeded(status.exitstatus):
        return status
    tail = await log_tail(api, upid)
    raise ProxmoxTaskFailed(upid, status.exitstatus or "unknown status", tail)
