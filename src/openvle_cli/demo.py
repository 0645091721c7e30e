"""`openvle demo`: the simulator, the API and the worker loop in one process.

Everything runs on the embedded defaults: SQLite in a data directory (a temporary one
unless `--data-dir` is given), the in-process queue and scheduler, the snapshot in SQL.
The database is migrated, the cluster synced and an admin token created before one JSON
line (`DemoInfo`: the API's and console's addresses, the admin token, the simulator's
address, token and CA file, the data directory and its env file) is printed, so scripts
can drive it; a human banner follows, then one log line per operation as it starts and
ends. With `--tour` it drives itself instead (`tour.py`) and stops when the tour ends.
SIGINT or SIGTERM stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import SecretStr

from openvle_cli.demo_env import DemoInfo, banner, base_url, console_url, write_env_file
from openvle_cli.errors import DemoError
from openvle_core.settings import (
    ProxmoxSettings,
    Settings,
    WorkerSettings,
    load_settings,
)

if TYPE_CHECKING:  # the heavy imports wait until a demo runs: `openvle --help` stays quick
    from openvle_core.runtime import Runtime
    from openvle_pvesim import Simulator

    Tour = Callable[[DemoInfo, Runtime], Awaitable[None]]

DEMO_TOKEN = "openvle@pve!ci"
"""The simulator's token with the ACLs the OpenVLE docs require (privilege separation)."""


@dataclass(frozen=True)
class DemoOptions:
    """What `openvle demo` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path | None = None
    time_scale: float = 0.5
    pve_version: str = "9.1"
    vms: int = 0
    log_level: str = "INFO"


def demo_settings(sim: Simulator, database_url: str, options: DemoOptions) -> Settings:
    """A whole Settings tree for the simulator (no environment, no .env)."""
    return load_settings(
        env_file=None,
        proxmox=ProxmoxSettings.values_for(
            sim.hostname, DEMO_TOKEN, sim.tokens[DEMO_TOKEN], sim.ca_file or False
        ),
        database={"url": SecretStr(database_url)},
        worker=demo_worker(options.time_scale),
        api={"host": options.host, "port": max(options.port, 1)},
        log={"level": options.log_level},
    )


def demo_worker(time_scale: float) -> dict[str, float]:
    """The worker's waits that follow the cluster's pace, scaled like the simulator: retry
    pauses, and the pause before a fresh VM's agent is first asked for its address."""
    scale = max(time_scale, 0.01)
    first_poll = WorkerSettings.model_fields["agent_ip_first_poll"].default
    return {"retry_backoff_scale": scale, "agent_ip_first_poll": first_poll * scale}


@contextlib.contextmanager
def data_directory(given: Path | None) -> Iterator[Path]:
    """The given directory (kept), or a temporary one removed at exit."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    path = Path(tempfile.mkdtemp(prefix="openvle-demo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0 = a free port), handed to uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def prepare(runtime: Runtime) -> str:
    """Sync once (imports the simulator's templates) and create an admin token."""
    from openvle_core.db.enums import TokenScope
    from openvle_core.db.session import transaction
    from openvle_core.sync.service import request_sync
    from openvle_core.tokens.service import create_token

    async with transaction(runtime.sessions) as session:
        op = await request_sync(session)
    await runtime.run(op.id)
    async with transaction(runtime.sessions) as session:
        _, plain = await create_token(session, "demo-admin", TokenScope.ADMIN)
    return plain


def url_host(host: str) -> str:
    """The host as it goes into a URL (a wildcard address becomes loopback)."""
    if host in {"0.0.0.0", "::", ""}:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def run_demo(
    options: DemoOptions, ready: Callable[[DemoInfo], None], tour: Tour | None = None
) -> None:
    """Run until SIGINT/SIGTERM (or cancellation), or until `tour` ends if one is given;
    call `ready` once serving."""
    from openvle_core.db.migrate import upgrade_to_head
    from openvle_core.handlers import run_operation
    from openvle_core.runtime import open_runtime
    from openvle_pvesim import run_simulator

    sock = bind_socket(options.host, options.port)  # fail fast when the port is taken
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with data_directory(options.data_dir) as data:
            url = f"sqlite+aiosqlite:///{data / 'openvle.sqlite3'}"
            await upgrade_to_head(url)
            async with run_simulator(
                version=options.pve_version,
                seed="demo",
                tls=True,
                time_scale=options.time_scale,
                vms=options.vms,
            ) as sim:
                settings = demo_settings(sim, url, options)
                async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
                    token = await prepare(runtime)
                    env_file = write_env_file(data, settings)

                    async def serving(port: int) -> None:
                        info = demo_info(options, port, token, sim, data, env_file)
                        ready(info)
                        await until_stopped(stop, tour(info, runtime) if tour else None)

                    await _serve_with_cron(settings, runtime, sock, options, serving)
    finally:
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def demo_info(
    options: DemoOptions, port: int, token: str, sim: Simulator, data: Path, env_file: Path
) -> DemoInfo:
    """The ready line's facts for the API on `port`."""
    api_url = f"http://{url_host(options.host)}:{port}/api/v1"
    pve_token = f"{DEMO_TOKEN}={sim.tokens[DEMO_TOKEN]}"
    return DemoInfo(
        api_url=api_url,
        docs_url=f"{base_url(api_url)}/docs",
        console_url=console_url(api_url, token),
        admin_token=token,
        pve_url=sim.url,
        pve_token=pve_token,
        pve_ca_file=str(sim.ca_file or ""),
        data_dir=str(data),
        env_file=str(env_file),
    )


async def until_stopped(stop: asyncio.Event, work: Awaitable[None] | None) -> None:
    """Wait for SIGINT/SIGTERM, or until `work` ends (its error is raised)."""
    tasks: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
    if work is not None:
        tasks.add(asyncio.ensure_future(work))
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()


async def _serve_with_cron(
    settings: Settings,
    runtime: Runtime,
    sock: socket.socket,
    options: DemoOptions,
    serving: Callable[[int], Awaitable[None]],
) -> None:
    """The app with the periodic jobs, served on `sock` while `serving(port)` runs."""
    from openvle_api.app import create_app
    from openvle_core.scheduler import scheduler

    async with scheduler(runtime):
        await _serve(create_app(settings, runtime), sock, options, serving)


async def _serve(
    app: object,
    sock: socket.socket,
    options: DemoOptions,
    serving: Callable[[int], Awaitable[None]],
) -> None:
    """Serve the API on `sock` until `serving(port)` returns (or the server stops)."""
    import uvicorn

    debug = options.log_level == "DEBUG"
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]  # a FastAPI app is an ASGI app
        log_config=None,  # our one root handler; the demo prints its own start lines
        log_level="debug" if debug else "warning",
        access_log=debug,
        timeout_graceful_shutdown=3,
    )
    from openvle_worker.probe import quiet_server

    server = quiet_server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                return
            await asyncio.sleep(0.02)
        work = asyncio.ensure_future(serving(int(sock.getsockname()[1])))
        await asyncio.wait({task, work}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        if not work.cancelled():
            work.result()
    finally:
        server.should_exit = True
        await task


def command(
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port; 0 picks a free one.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the SQLite database here (default: a temp dir).")
    ] = None,
    time_scale: Annotated[
        float, typer.Option(min=0, help="Simulated task durations x F (0 = instant).")
    ] = 0.5,
    pve_version: Annotated[str, typer.Option(help="Simulated PVE version: 9.1 or 8.4.")] = "9.1",
    vms: Annotated[int, typer.Option(min=0, help="Extra VMs in the simulated pool.")] = 0,
    log_level: Annotated[
        str | None,
        typer.Option(help="DEBUG, INFO, WARNING or ERROR (default INFO; WARNING with --tour)."),
    ] = None,
    tour: Annotated[
        bool, typer.Option("--tour", help="Take the guided tour of one lab, then stop.")
    ] = False,
) -> None:
    """Run the whole service against a simulated cluster, in one process.

    Prints one JSON line (api_url, docs_url, console_url, admin_token, pve_url,
    pve_token, pve_ca_file, data_dir, env_file) once ready, then a banner and a log
    line per operation; Ctrl-C or SIGTERM stops it. With --tour it creates an event,
    deploys it, stops a VM and archives it, showing each step, then stops.
    """
    level = (log_level or ("WARNING" if tour else "INFO")).upper()
    options = DemoOptions(host, port, data_dir, time_scale, pve_version, vms, level)
    if pve_version not in {"9.1", "8.4"}:
        raise typer.BadParameter("must be 9.1 or 8.4", param_hint="--pve-version")

    def ready(info: DemoInfo) -> None:
        typer.echo(info.json_line())
        typer.echo(banner(info, options.pve_version, temporary=options.data_dir is None))
        sys.stdout.flush()

    _configure_demo_logging(options)
    try:
        if tour:
            from openvle_cli.tour import take_tour, tour_header

            asyncio.run(run_demo(options, lambda info: typer.echo(tour_header(info)), take_tour))
        else:
            asyncio.run(run_demo(options, ready))
    except DemoError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _configure_demo_logging(options: DemoOptions) -> None:
    """Readable logs on stderr at the demo's level (stdout stays for the JSON line)."""
    from openvle_core.logging import configure_logging

    configure_logging(options.log_level, "text")
