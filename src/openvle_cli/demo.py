"""`openvle demo`: the simulator, the API and the worker loop in one process.

Everything runs on the embedded defaults: SQLite in a data directory (a temporary one
unless `--data-dir` is given), the in-process queue and scheduler, the snapshot in SQL.
The database is migrated, the cluster synced and an admin token created before one JSON
line `{"api_url", "docs_url", "admin_token", "pve_url"}` is printed, so scripts can
drive it; a human banner follows. SIGINT or SIGTERM stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr

from openvle_cli.errors import DemoError
from openvle_core.db.enums import TokenScope
from openvle_core.db.session import transaction
from openvle_core.handlers import run_operation
from openvle_core.runtime import Runtime
from openvle_core.settings import (
    ProxmoxSettings,
    Settings,
    load_settings,
)
from openvle_pvesim import Simulator

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
    log_level: str = "WARNING"


@dataclass(frozen=True)
class DemoInfo:
    """What the ready line reports."""

    api_url: str
    docs_url: str
    admin_token: str
    pve_url: str

    def json_line(self) -> str:
        """The one JSON line scripts wait for."""
        return json.dumps(self.__dict__)


def demo_settings(sim: Simulator, database_url: str, options: DemoOptions) -> Settings:
    """A whole Settings tree for the simulator (no environment, no .env)."""
    return load_settings(
        env_file=None,
        proxmox=ProxmoxSettings.values_for(
            sim.hostname, DEMO_TOKEN, sim.tokens[DEMO_TOKEN], sim.ca_file or False
        ),
        database={"url": SecretStr(database_url)},
        worker={"retry_backoff_scale": max(options.time_scale, 0.01)},
        api={"host": options.host, "port": max(options.port, 1)},
        log={"level": options.log_level},
    )


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


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops it when it stops itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def prepare(runtime: Runtime) -> str:
    """Sync once (imports the simulator's templates) and create an admin token."""
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


async def run_demo(options: DemoOptions, ready: Callable[[DemoInfo], None]) -> None:
    """Run until SIGINT/SIGTERM (or cancellation); call `ready` once serving."""
    from openvle_api.app import create_app
    from openvle_core.db.migrate import upgrade_to_head
    from openvle_core.runtime import open_runtime
    from openvle_core.scheduler import scheduler
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
                    async with scheduler(runtime):
                        app = create_app(settings, runtime)
                        await _serve(app, sock, sim, token, stop, ready, options)
    finally:
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _serve(
    app: object,
    sock: socket.socket,
    sim: Simulator,
    token: str,
    stop: asyncio.Event,
    ready: Callable[[DemoInfo], None],
    options: DemoOptions,
) -> None:
    """Serve the API on `sock` until `stop` is set."""
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]  # a FastAPI app is an ASGI app
        log_level=options.log_level.lower(),
        timeout_graceful_shutdown=3,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                return
            await asyncio.sleep(0.02)
        base = f"http://{url_host(options.host)}:{port}"
        ready(DemoInfo(f"{base}/api/v1", f"{base}/docs", token, sim.url))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
    finally:
        server.should_exit = True
        await task


def banner(info: DemoInfo, options: DemoOptions) -> str:
    """The human-readable text printed after the JSON line."""
    where = "a temporary directory" if options.data_dir is None else str(options.data_dir)
    return "\n".join(
        [
            "",
            f"OpenVLE demo: a simulated Proxmox VE {options.pve_version} cluster "
            "(pve1-pve3, templates 9000-9002)",
            f"  API          {info.api_url}",
            f"  API docs     {info.docs_url}",
            f"  admin token  {info.admin_token}",
            f"  Proxmox API  {info.pve_url}",
            "",
            "Try it:",
            f"  export TOKEN={info.admin_token}",
            f'  curl -H "Authorization: Bearer $TOKEN" {info.api_url}/templates',
            "  # clone and start a VM from one of them:",
            f'  curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\\n'
            f'       -d \'{{"template_id": "<id>", "start": true}}\' {info.api_url}/vms',
            "",
            f"Data lives in {where}. Ctrl-C stops.",
        ]
    )


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
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "WARNING",
) -> None:
    """Run the whole service against a simulated cluster, in one process.

    Prints one JSON line {"api_url", "docs_url", "admin_token", "pve_url"} once ready,
    then a banner; Ctrl-C or SIGTERM stops it.
    """
    options = DemoOptions(host, port, data_dir, time_scale, pve_version, vms, log_level.upper())
    if pve_version not in {"9.1", "8.4"}:
        raise typer.BadParameter("must be 9.1 or 8.4", param_hint="--pve-version")

    def ready(info: DemoInfo) -> None:
        typer.echo(info.json_line())
        typer.echo(banner(info, options))
        sys.stdout.flush()

    _configure_demo_logging(options)
    try:
        asyncio.run(run_demo(options, ready))
    except DemoError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _configure_demo_logging(options: DemoOptions) -> None:
    """Readable logs on stderr at the demo's level (stdout stays for the JSON line)."""
    from openvle_core.logging import configure_logging

    configure_logging(options.log_level, "text")
