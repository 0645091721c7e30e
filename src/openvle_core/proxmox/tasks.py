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
