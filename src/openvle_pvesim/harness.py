"""Run the simulator in-process: an async context manager, or a background thread.

`run_simulator(...)` starts the server on a free port in the running loop and yields a
`Simulator` handle (URL, CA file, tokens, the model, the fault injector, schema
violations). `start_in_thread(...)` does the same in a thread with its own loop, for
synchronous clients such as proxmoxer and for benchmarks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import random
import shutil
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from openvle_pvesim.app import SimulatorApp
from openvle_pvesim.faults import FaultInjector
from openvle_pvesim.server import SimulatorServer
from openvle_pvesim.tls import make_server_tls

if TYPE_CHECKING:
    from openvle_pvesim.cluster import Cluster


@dataclass
class Simulator:
    """A running simulator: where it listens and handles to inspect and steer it."""

    url: str
    hostname: str
    ca_file: Path | None
    tokens: dict[str, str]
    passwords: dict[str, str]
    cluster: Cluster
    faults: FaultInjector
    version: str
    app: SimulatorApp = field(repr=False)
    server: SimulatorServer = field(repr=False)

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (shows whether clients keep them alive)."""
        return self.server.connections_accepted

    @property
    def request_log(self) -> Counter[tuple[str, str]]:
        """Requests answered so far per (method, path template), e.g.
        `("GET", "/pools")` (the template where the route is known, else the path)."""
        return self.app.request_log

    @property
    def violations(self) -> list[str]:
        """Response-schema violations seen so far (only with check_responses=True)."""
        return self.app.violations


def parse_token(spec: str) -> tuple[str, str]:
    """`USER@REALM!ID=SECRET` -> (tokenid, secret), split at the last `=`."""
    tokenid, sep, secret = spec.rpartition("=")
    if not sep or "!" not in tokenid or not secret:
        raise ValueError(f"token must look like USER@REALM!ID=SECRET, got {spec!r}")
    return tokenid, secret


def _build(
    seed: str,
    version: str,
    vms: int,
    time_scale: float,
    faults: FaultInjector,
    random_seed: int,
    tokens: Iterable[str | tuple[str, str]],
) -> Cluster:
    importlib.import_module("openvle_pvesim.handlers")
    importlib.import_module("openvle_pvesim.access_handlers")
    seeds = importlib.import_module("openvle_pvesim.seeds")
    pairs = [parse_token(t) if isinstance(t, str) else t for t in tokens]
    cluster: Cluster = seeds.build_cluster(
        seed,
        version=version,
        vms=vms,
        time_scale=time_scale,
        faults=faults,
        rng=random.Random(random_seed),
        tokens=pairs,
    )
    return cluster


@contextlib.asynccontextmanager
async def run_simulator(
    *,
    version: str = "9.1",
    seed: str = "demo",
    tls: bool = True,
    time_scale: float = 0.0,
    vms: int = 0,
    tokens: Iterable[str | tuple[str, str]] = (),
    faults: str = "",
    random_seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    check_responses: bool = False,
    stats_interval: float | None = None,
) -> AsyncIterator[Simulator]:
    """Start a simulator in the current loop; stop it (and its cluster) on exit.
    `stats_interval`: seconds between stats rounds, real time (default: 10 s x
    `time_scale`, at least 0.05 s)."""
    injector = FaultInjector(faults, random_seed)
    cluster = _build(seed, version, vms, time_scale, injector, random_seed, tokens)
    cluster.stats_interval = stats_interval
    app = SimulatorApp(
        cluster,
        cluster.access,
        injector,
        version=version,
        time_scale=time_scale,
        check_responses=check_responses,
    )
    server_tls = make_server_tls((host, "localhost")) if tls else None
    server = SimulatorServer(app, server_tls.context if server_tls else None)
    bound = await server.start(host, port)
    cluster.start()
    hostname = f"{host}:{bound}"
    scheme = "https" if tls else "http"
    try:
        yield Simulator(
            url=f"{scheme}://{hostname}/api2/json",
            hostname=hostname,
            ca_file=server_tls.ca_file if server_tls else None,
            tokens=cluster.access.tokens(),
            passwords=dict(cluster.passwords),
            cluster=cluster,
            faults=injector,
            version=version,
            app=app,
            server=server,
        )
    finally:
        await server.stop()
        await cluster.stop()
        if server_tls is not None:
            shutil.rmtree(server_tls.directory, ignore_errors=True)


class SimulatorThread:
    """A simulator serving from a background thread with its own event loop."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.simulator: Simulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pvesim", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_simulator(**self.options) as simulator:
            self.simulator = simulator
            self._ready.set()
            await self._stop.wait()

    def call(self, func: Any, *args: Any) -> Any:
        """Run `func(*args)` (sync, or a coroutine function) on the simulator's loop."""
        assert self._loop is not None

        async def invoke() -> Any:
            result = func(*args)
            return await result if asyncio.iscoroutine(result) else result

        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            invoke(), self._loop
        )
        return future.result()

    def __enter__(self) -> Simulator:
        self._thread.start()
        self._ready.wait()
        if self._error is not None or self.simulator is None:
            raise RuntimeError("simulator failed to start") from self._error
        return self.simulator

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def start_in_thread(**options: Any) -> SimulatorThread:
    """`with start_in_thread(vms=100) as sim:` runs a simulator beside synchronous code."""
    return SimulatorThread(**options)
