"""The sync benchmark's worker (`benchmarks/sync.py` starts it; not a benchmark itself).

A process built like `openvle worker`: it imports what the worker imports, opens a
runtime (`open_runtime`: one Proxmox client, the DB engine, the MongoDB snapshot store)
and runs one periodic sync tick (`sync_tick`, the cron's function) per `sync` line on
stdin, answering one JSON line each: wall and CPU seconds, the result's counts, its peak
RSS so far. `exit` answers with the peak RSS (VmHWM, see `rss_mb`) and ends it. The first stdin
line is the configuration (simulator, DB and MongoDB URLs, token, pool, `profile`: a
file for a cProfile of every sync but the first; `phases`: report when each phase of
a sync started and ended, in seconds from the sync's start, and the RSS (MB) when it
ended, the RSS peak (when, MB), the garbage collector's time and runs per generation;
with `trace_memory` also the Python memory traced (tracemalloc) at each phase's
end and at the sync's peak).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import importlib
import json
import resource
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from openvle_core.handlers import run_operation
from openvle_core.runtime import open_runtime
from openvle_core.settings import ProxmoxSettings, Settings, load_settings
from openvle_core.snapshot.base import DiffingSnapshotStore
from openvle_core.sync import identity, service
from openvle_core.sync.tick import sync_tick

# The phases of a sync timed with `phases`: (module or class, function name, label).
PHASES = (
    (service, "fetch_cluster", "fetch"),
    (service, "read_state", "db_read"),
    (service, "adopt", "adopt"),
    (identity, "check_vms", "identity"),
    (service, "_live_looks", "live_looks"),
    (service, "_check_templates", "templates"),
    (service, "write_changes", "db_write"),
    (DiffingSnapshotStore, "replace_all", "snapshot"),
)


def settings_for(
    info: dict[str, Any], database: str, mongodb: str, token: str, secret: str, pool: str
) -> Settings:
    """The settings of a worker on the simulator `info`, the DB and nx-27017 given."""
    proxmox = ProxmoxSettings(
        **ProxmoxSettings.values_for(info["hostname"], token, secret, info["ca_file"]),
        vms_pool=pool,
    )
    base = load_settings(env_file=None)
    return base.model_copy(
        update={
            "proxmox": proxmox,
            "database": base.database.model_copy(update={"url": SecretStr(database)}),
            "mongodb": base.mongodb.model_copy(update={"url": SecretStr(mongodb)}),
        }
    )


def rss_mb() -> float:
    """This process's peak RSS so far, in MB: `VmHWM`, the high-water mark of its own
    address space. Not `ru_maxrss`: Linux carries that over fork and exec, so a child
    reports at least the RSS its parent had when it forked (the benchmark's, ~170 MB)."""
    return _status_mb("VmHWM:") or round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )


def current_rss_mb() -> float:
    """This process's RSS now, in MB."""
    return _status_mb("VmRSS:")


def _status_mb(field: str) -> float:
    """A `kB` figure of /proc/self/status in MB (0.0 where there is no /proc)."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else ():
        if line.startswith(field):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Phases:
    """When each timed phase of the current sync ran (and the memory traced after it)."""

    def __init__(self, trace_memory: bool) -> None:
        self.trace_memory = trace_memory
        self.started = time.perf_counter()
        self.spans: dict[str, list[float]] = {}
        self.gc_s, self.gc_runs, self._gc_began = 0.0, [0, 0, 0], 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """Sum the time the garbage collector took (and its runs per generation)."""
        if phase == "start":
            self._gc_began = time.perf_counter()
        else:
            self.gc_s += time.perf_counter() - self._gc_began
            self.gc_runs[info["generation"]] += 1

    def install(self) -> None:
        for module, name, label in PHASES:
            setattr(module, name, self._timed(getattr(module, name), label))

    def _timed(
        self, func: Callable[..., Awaitable[Any]], label: str
    ) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            begun = time.perf_counter() - self.started
            try:
                return await func(*args, **kwargs)
            finally:
                span = [round(begun, 3), round(time.perf_counter() - self.started, 3)]
                span.append(current_rss_mb())
                if self.trace_memory:
                    span.append(round(tracemalloc.get_traced_memory()[0] / 1e6, 1))
                self.spans[label] = span

        return timed

    def start(self) -> None:
        self.started, self.spans = time.perf_counter(), {}
        self.gc_s, self.gc_runs = 0.0, [0, 0, 0]
        if self.trace_memory:
            tracemalloc.reset_peak()
        self.peak = (0.0, 0.0)
        self.sampling = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def _sample(self) -> None:
        """Every 2 ms, the RSS now: the highest and when it was seen."""
        while not self.sampling.wait(0.002):
            rss = current_rss_mb()
            if rss > self.peak[1]:
                self.peak = (round(time.perf_counter() - self.started, 3), rss)

    def report(self) -> dict[str, Any]:
        self.sampling.set()
        self.sampler.join()
        found: dict[str, Any] = dict(self.spans)
        found["rss_peak"] = list(self.peak)
        found["gc"] = [round(self.gc_s, 3), *self.gc_runs]  # seconds, runs per generation
        if self.trace_memory:
            current, peak = tracemalloc.get_traced_memory()
            found["traced_mb"] = round(current / 1e6, 1)
            found["traced_peak_mb"] = round(peak / 1e6, 1)
        return found


async def worker_main() -> None:
    """Open a runtime as `openvle worker` does, then run one periodic sync tick per `sync`
    line; `exit` answers with the peak RSS."""
    worker = importlib.import_module("openvle_worker.worker")  # what `openvle worker` holds
    config = json.loads(sys.stdin.readline())
    settings = settings_for(
        config["info"],
        config["database"],
        config["mongodb"],
        config["token"],
        config["secret"],
        config["pool"],
    )
    profiler = cProfile.Profile() if config.get("profile") else None
    phases = Phases(bool(config.get("trace_memory"))) if config.get("phases") else None
    if phases is not None:
        phases.install()
        if phases.trace_memory:
            tracemalloc.start()
    syncs = 0
    async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
        worker.settle_heap()  # as `openvle worker` does once its runtime is open
        print(json.dumps({"rss_mb": current_rss_mb()}), flush=True)
        for line in sys.stdin:
            if line.strip() != "sync":
                break
            if phases is not None:
                phases.start()
            started, cpu = time.perf_counter(), time.process_time()
            if profiler is not None and syncs > 0:  # the changed syncs, not the first
                profiler.enable()
            result = await sync_tick({"runtime": runtime})
            if profiler is not None:
                profiler.disable()
            seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
            syncs += 1
            reply = {"seconds": seconds, "cpu_s": cpu_s, "result": result, "rss_mb": rss_mb()}
            if phases is not None:
                reply["phases"] = phases.report()
            print(json.dumps(reply), flush=True)
    if profiler is not None:
        profiler.dump_stats(config["profile"])
    print(json.dumps({"peak_rss_mb": rss_mb()}), flush=True)


if __name__ == "__main__":
    asyncio.run(worker_main())
