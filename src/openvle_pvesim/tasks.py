"""Worker tasks (UPIDs, status, logs) and the file locks tasks contend for.

A task is a coroutine run in the background after the handler returned its UPID, as PVE's
`fork_worker` does. Durations are scaled by the cluster's time scale; at scale 0 the worker
runs to completion before the UPID is returned. `TaskError` ends a task with its message as
`exitstatus` and `TASK ERROR: ...` as the last log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
UPID_RE = re.compile(
    r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
    r"([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$"
)


class TaskError(Exception):
    """Ends a task in error; the message becomes its exitstatus (on one line)."""


@dataclass
class Task:
    """One worker task as /nodes/{node}/tasks reports it."""

    upid: str
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str
    log: list[str] = field(default_factory=list)
    status: str = "running"
    exitstatus: str | None = None
    endtime: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    callbacks: list[Callable[[], None]] = field(default_factory=list)

    def owner(self) -> tuple[str, str | None]:
        """(user, tokenid) as PVE's `split_tokenid` gives them for the UPID's user."""
        user, sep, tokenid = self.user.partition("!")
        return user, (tokenid if sep else None)

    def owned_by(self, authuser: str) -> bool:
        """Tasks.pm `$check_task_user`: a token sees its own, a user its own and its tokens'."""
        return authuser == self.user or authuser == self.owner()[0]

    def status_data(self) -> dict[str, Any]:
        """GET .../tasks/{upid}/status: token users are split into `user` and `tokenid`."""
        data: dict[str, Any] = {
            "upid": self.upid,
            "node": self.node,
            "pid": self.pid,
            "pstart": self.pstart,
            "starttime": self.starttime,
            "type": self.type,
            "id": self.id,
            "user": self.user,
            "status": self.status,
        }
        if "!" in self.user:
            data["user"], data["tokenid"] = self.owner()
        if self.exitstatus is not None:
            data["exitstatus"] = self.exitstatus
        return data

    def list_item(self, running_status: bool = False) -> dict[str, Any]:
        """An item of GET /nodes/{node}/tasks and /cluster/tasks.

        Token users are split into `user` and `tokenid` as in the status (Tasks.pm
        `$convert_token_task`, Cluster.pm `tasks`); a running task listed from the active
        list has `status: RUNNING` (Tasks.pm `node_tasks`).
        """
        item: dict[str, Any] = {
            "upid": self.upid,
            "node": self.node,
            "pid": self.pid,
            "pstart": self.pstart,
            "starttime": self.starttime,
            "type": self.type,
            "id": self.id,
            "user": self.user,
        }
        if "!" in self.user:
            item["user"], item["tokenid"] = self.owner()
        if self.endtime is not None:
            item["endtime"] = self.endtime
            item["status"] = self.exitstatus
        elif running_status:
            item["status"] = "RUNNING"
        return item


class FLock:
    """A shared/exclusive lock with a timeout, like PVE's flock-based `lock_file_full`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.readers = 0
        self.writer = False
        self._changed = asyncio.Condition()

    def _free(self, shared: bool) -> bool:
        return not self.writer and (shared or self.readers == 0)

    async def acquire(self, wait: float, shared: bool = False) -> None:
        """Wait up to `wait` seconds; raise TaskError with PVE's timeout text."""
        async with self._changed:
            if not self._free(shared):
                try:
                    waiter = self._changed.wait_for(lambda: self._free(shared))
                    await asyncio.wait_for(waiter, max(wait, 0.001))
                except TimeoutError:
                    raise TaskError(f"can't lock file '{self.path}' - got timeout") from None
            if shared:
                self.readers += 1
            else:
                self.writer = True

    async def release(self, shared: bool = False) -> None:
        async with self._changed:
            if shared:
                self.readers -= 1
            else:
                self.writer = False
            self._changed.notify_all()


class TaskContext:
    """What a worker uses: its task, log lines, and scaled sleeps (which honour the gate)."""

    def __init__(self, manager: TaskManager, task: Task) -> None:
        self.manager = manager
        self.task = task

    def log(self, line: str) -> None:
        self.task.log.append(line)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time; blocks while tests hold the gate closed."""
        await self.manager.gate.wait()
        scaled = seconds * self.manager.time_scale
        if scaled > 0:
            await asyncio.sleep(scaled)


Worker = Callable[[TaskContext], Awaitable[None]]


class TaskManager:
    """Creates, runs and indexes tasks; `gate` lets tests freeze running workers."""

    def __init__(self, time_scale: float, rng: random.Random) -> None:
        self.time_scale = time_scale
        self.rng = rng
        self.tasks: dict[str, Task] = {}
        self.gate = asyncio.Event()
        self.gate.set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._pid = rng.randrange(0x1000, 0x40000)
        self._pstart = rng.randrange(0x100000, 0x1000000)

    def new_task(self, node: str, kind: str, obj_id: str, user: str) -> Task:
        """Create a task record with a real-format UPID (trailing colon, token user)."""
        self._pid += self.rng.randrange(1, 40)
        self._pstart += self.rng.randrange(10, 500)
        now = int(time.time())
        upid = f"UPID:{node}:{self._pid:08X}:{self._pstart:08X}:{now:08X}:{kind}:{obj_id}:{user}:"
        task = Task(upid, node, self._pid, self._pstart, now, kind, obj_id, user)
        self.tasks[upid] = task
        return task

    async def spawn(self, node: str, kind: str, obj_id: str, user: str, worker: Worker) -> str:
        """Start `worker` as a task and return its UPID (at scale 0, after it finished)."""
        task = self.new_task(node, kind, obj_id, user)
        if self.time_scale == 0 and self.gate.is_set():
            await self._run(task, worker)
        else:
            runner = asyncio.get_running_loop().create_task(self._run(task, worker))
            self._running[task.upid] = runner
            runner.add_done_callback(lambda _: self._running.pop(task.upid, None))
        return task.upid

    async def _run(self, task: Task, worker: Worker) -> None:
        try:
            await worker(TaskContext(self, task))
        except TaskError as exc:
            self.finish(task, " ".join(str(exc).split("\n")).strip())
        except asyncio.CancelledError:
            self.finish(task, "received interrupt")
        except Exception as exc:  # a simulator bug: fail the task visibly, keep the trace
            log.exception("task %s crashed", task.upid)
            self.finish(task, f"internal simulator error: {exc}")
        else:
            self.finish(task, None)

    def finish(self, task: Task, error: str | None) -> None:
        """Mark a task stopped with `OK` or the error text, ending its log as PVE does."""
        if error is None:
            task.exitstatus = "OK"
            task.log.append("TASK OK")
        else:
            task.exitstatus = error
            task.log.append(f"TASK ERROR: {error}")
        task.status = "stopped"
        task.endtime = int(time.time())
        task.done.set()
        for callback in task.callbacks:
            callback()

    def watch(self, upid: str, callback: Callable[[], None]) -> None:
        """Call `callback` when the task stops (at once if it already has)."""
        task = self.tasks[upid]
        if task.done.is_set():
            callback()
        else:
            task.callbacks.append(callback)

    async def wait(self, upid: str) -> Task:
        """Wait for a task to stop (for tests and internal chaining)."""
        task = self.tasks[upid]
        await task.done.wait()
        return task

    def stop(self, upid: str) -> None:
        """DELETE /nodes/{node}/tasks/{upid}: interrupt a running worker."""
        runner = self._running.get(upid)
        if runner is not None:
            runner.cancel()

    async def drain(self) -> None:
        """Wait until every running worker has finished."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def cancel_all(self) -> None:
        runners = list(self._running.values())
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
