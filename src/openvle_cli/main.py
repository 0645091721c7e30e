"""The `openvle` command: api, worker, migrate, sync, token.

Each command loads the settings once (a bad variable prints one clear message and
exits 2) and is the outermost caller: it commits its own unit of work.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from openvle_cli import demo, doctor, plan, progress, tokens
from openvle_cli.settings import ready_settings_or_exit, settings_or_exit
from openvle_core import __version__

app = typer.Typer(
    name="openvle",
    help="OpenVLE Proxmox service.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: typer's rich help shows flags as `<bool>`
)
app.add_typer(tokens.app, name="token")
app.command("demo")(demo.command)
app.command("doctor")(doctor.command)
app.command("follow")(progress.command)
app.command("plan")(plan.command)


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context) -> None:
    """Without a command: print the version."""
    if ctx.invoked_subcommand is None:
        typer.echo(f"openvle {__version__}")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Default: API_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: API_PORT.")] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, envvar="API_WORKERS", help="uvicorn processes (>1 needs REDIS_URL)."),
    ] = 1,
    proxy_headers: Annotated[
        bool,
        typer.Option(envvar="API_PROXY_HEADERS", help="Trust X-Forwarded-For/-Proto."),
    ] = True,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="API_FORWARDED_ALLOW_IPS",
            help="Proxies whose forwarded headers are trusted: IPs, networks, or *.",
        ),
    ] = "127.0.0.1",
) -> None:
    """Serve the REST API (with no REDIS_URL, operations run in this process too)."""
    from openvle_cli.serve import serve_api

    settings = settings_or_exit()
    if workers > 1 and settings.redis.url is None:
        typer.echo(
            "--workers > 1 needs REDIS_URL (the embedded queue runs in one process)", err=True
        )
        raise typer.Exit(2)
    serve_api(
        settings,
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )


@app.command()
def worker() -> None:
    """Run an arq worker: operations from Redis and the periodic jobs (/metrics and
    /health on WORKER_METRICS_PORT; SIGTERM: finish or hand back, then exit 0)."""
    from openvle_worker.worker import run_worker

    asyncio.run(run_worker(settings_or_exit()))


@app.command()
def migrate(
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to keep retrying the first connection while the database is "
            "not up yet (start-up order); 0 tries once.",
        ),
    ] = 60.0,
) -> None:
    """Bring the database schema to the newest revision (safe to run concurrently)."""
    from openvle_core.db.errors import DatabaseUnreachable, MigrationLockTimeout
    from openvle_core.db.migrate import LockKind, upgrade_to_head, wait_for_database
    from openvle_core.db.session import is_sqlite

    settings = settings_or_exit()
    url = settings.database.url.get_secret_value()

    async def run() -> str | None:
        if not is_sqlite(url):
            await wait_for_database(url, wait)
        return await upgrade_to_head(url, lock=LockKind(settings.database.migrate_lock))

    try:
        revision = asyncio.run(run())
    except (DatabaseUnreachable, MigrationLockTimeout) as exc:
        typer.echo(f"migrate failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"database at revision {revision}")


@app.command()
def sync(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome as one JSON object.")
    ] = False,
) -> None:
    """Sync the database with the cluster now, in this process, and print its counts."""
    from rich.console import Console

    from openvle_cli.sync import format_counts, sync_once

    settings = ready_settings_or_exit()
    with Console(stderr=True).status("syncing the cluster ..."):
        outcome = asyncio.run(sync_once(settings))
    if outcome.joined and not as_json:
        typer.echo(f"a sync was already in flight ({outcome.joined}); waited for it")
    if as_json:
        payload = {"state": outcome.state, "error": outcome.error, **outcome.counts}
        typer.echo(json.dumps(payload | ({"joined": outcome.joined} if outcome.joined else {})))
    else:
        typer.echo(f"sync {outcome.state}" + (f": {outcome.error}" if outcome.error else ""))
        for line in format_counts(outcome.counts):
            typer.echo(f"  {line}")
    if outcome.error:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `openvle` script; returns the exit status."""
    try:
        app(args=sys.argv[1:] if argv is None else argv, prog_name="openvle")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
