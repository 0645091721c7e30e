"""`openvle doctor`: a table of OK / FAIL with the command that fixes each failure."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from openvle_core.doctor import Check, DoctorReport, Status, run_doctor

STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def render(report: DoctorReport, console: Console) -> None:
    """The table of checks, then the fix commands unwrapped (to copy), then a verdict."""
    table = Table()
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        status = f"[{STYLES[check.status]}]{check.status.value}[/]"
        table.add_row(Text(check.name), status, Text(check.detail))  # no markup, no :emoji:
    console.print(table)
    for check in report.checks:
        if check.fix and check.status in {Status.FAIL, Status.WARN}:
            console.print(f"\nto fix {check.name}:", markup=False)
            for line in check.fix:
                console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"\n{verdict(report)}", markup=False)


def verdict(report: DoctorReport) -> str:
    """The last line: the failed checks, then the warned ones (warnings do not fail a run)."""
    failed = [c.name for c in report.checks if c.status is Status.FAIL]
    warned = [c.name for c in report.checks if c.status is Status.WARN]
    parts = [f"FAILED: {', '.join(failed)}"] if failed else []
    parts += [f"warnings: {', '.join(warned)}"] if warned else []
    return "; ".join(parts) or "all checks passed"


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check settings, database, Redis, MongoDB and Proxmox (TLS, token, pool, privileges).

    Each failure comes with the exact command that fixes it (`pveum ...` on a node);
    the exit status is 1 when any check failed.
    """
    from openvle_core.logging import setup_logging
    from openvle_core.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:  # reported as the first (and only) check
        report = DoctorReport([Check("settings", Status.FAIL, exc.message)])
    else:
        setup_logging(settings)
        report = asyncio.run(run_doctor(settings))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report, Console(width=160 if not Console().is_terminal else None, emoji=False))
    if not report.ok:
        raise typer.Exit(1)
