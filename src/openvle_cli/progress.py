"""`openvle follow OPERATION_ID`: an operation and each of its VMs, live, until it ends.

Reads the operation from DATABASE_URL every half second (the same database the API and
workers write), so it follows a deploy, an archive, a sync or a stop started anywhere:
by the API, another CLI, or a worker's cron. In a terminal it redraws one table (the
counts first, so they show at any width); in a pipe or a log it prints a line whenever
a VM moves on. Exit status 0 when the operation succeeded, 1 when it failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.padding import Padding
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_cli.watch import OperationView, Snapshot, VmLine, follow_operation

BUSY = frozenset({"cloning", "configuring", "starting", "stopping", "deleting", "migrating"})


def operation_summary(op: OperationView) -> str:
    """`event.deploy event lab1: running, 1/3 VMs, 4.2 s`: the counts before anything long."""
    parts = [f"{op.kind} {op.target}: {op.state}"]
    if op.total and op.target.startswith("event "):  # an event's progress counts its VMs
        parts.append(f"{op.done}/{op.total} VMs")
    if op.started_at is not None:
        parts.append(f"{op.seconds():.1f} s")
    return ", ".join(parts)


def vm_text(vm: VmLine, width: int = 0) -> str:
    """`lab1-001-debian-12-template  running  10.20.0.101`, the name padded to `width`."""
    text = f"{vm.name.ljust(width)}  {vm.step}"
    if vm.ipv4:
        text += f"  {vm.ipv4}"
    return text + (f": {vm.error}" if vm.error else "")


class LineLog:
    """Plain lines, one whenever a VM moves on or the operation's state or count changes
    (pipes, logs, tests)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.where: tuple[str, int] | None = None  # the operation's (state, done) shown last
        self.shown: dict[str, str] = {}

    def __call__(self, snap: Snapshot) -> None:
        op = snap.op
        if self.where is None:
            self.echo(operation_summary(op))
            self.where = (op.state, op.done)
        width = max((len(vm.name) for vm in snap.vms), default=0)
        for vm in snap.vms:
            text = vm_text(vm, width)
            if self.shown.get(vm.id) != text:
                self.shown[vm.id] = text
                self.echo(f"  {text}")
        if (op.state, op.done) != self.where:
            self.echo(operation_summary(op))
            self.where = (op.state, op.done)


class Board:
    """What a terminal shows, rendered afresh on each refresh (the clock moves): the
    header, then one line per VM cut to the terminal's width."""

    def __init__(self, rows: int) -> None:
        self.rows = max(rows, 3)
        self.snap: Snapshot | None = None

    def __call__(self, snap: Snapshot) -> None:
        self.snap = snap

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.snap is None:
            yield Text("looking ...")
            return
        yield _line(board_header(self.snap.op), "bold")
        yield from vm_rows(self.snap.vms, self.rows, options.max_width)


def board_header(op: OperationView) -> str:
    """`running  1/3 VMs  4.2 s  event.deploy event lab1`: what moves first, names last
    (a narrow terminal cuts the end of the line, never the counts)."""
    counts = f"  {op.done}/{op.total} VMs" if op.total and op.target.startswith("event ") else ""
    return f"{op.state}{counts}  {op.seconds():.1f} s  {op.kind} {op.target}"


def vm_rows(vms: tuple[VmLine, ...], rows: int, width: int) -> list[Text]:
    """VMs by name; when they do not fit, failed and busy ones first, then "N more"."""
    shown = list(vms)
    if len(vms) > rows:
        order = sorted(vms, key=lambda v: (v.step != "failed", v.step not in BUSY, v.name))
        shown = sorted(order[: rows - 1], key=lambda v: v.name)
    name_width = min(max((len(vm.name) for vm in vms), default=0), max(width - 30, 12))
    lines = []
    for vm in shown:
        name = vm.name if len(vm.name) <= name_width else vm.name[: name_width - 1] + "…"
        text = Text(f"{name.ljust(name_width)}  ")
        style = "red" if vm.step == "failed" else ("yellow" if vm.step in BUSY else "")
        text.append(vm.step.ljust(9), style=style)
        text.append(f"  {(vm.ipv4 or '').ljust(15)}  {vm.error or vm.node or ''}".rstrip())
        text.truncate(width, overflow="ellipsis")
        lines.append(text)
    if len(shown) < len(vms):
        lines.append(_line(f"... and {len(vms) - len(shown)} more", "dim"))
    return lines


def _line(text: str, style: str) -> Text:
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


async def follow_live(
    sessions: async_sessionmaker[AsyncSession],
    op_id: str,
    console: Console,
    *,
    poll: float = 0.5,
    indent: int = 0,
) -> Snapshot:
    """Follow the operation, shown on `console`: a live table in a terminal, else lines
    (each indented by `indent` spaces)."""
    if not console.is_terminal:
        pad = " " * indent
        log = LineLog(lambda line: console.print(pad + line, markup=False, soft_wrap=True))
        return await follow_operation(sessions, op_id, log, poll=poll)
    board = Board(console.size.height - 4)
    shown = Padding(board, (0, 0, 0, indent))
    with Live(shown, console=console, refresh_per_second=4, transient=False):
        return await follow_operation(sessions, op_id, board, poll=poll)


def command(
    operation_id: Annotated[str, typer.Argument(help="The id POST requests answer with.")],
) -> None:
    """Show an operation and each of its VMs (a deploy, archive, stop ...) until it ends."""
    from openvle_cli.settings import ready_settings_or_exit
    from openvle_core.db.session import engine_from_settings, session_factory
    from openvle_core.errors import OpenVLEError

    settings = ready_settings_or_exit()
    console = Console(highlight=False, emoji=False)

    async def go() -> Snapshot:
        engine = engine_from_settings(settings.database)
        try:
            return await follow_live(session_factory(engine), operation_id, console)
        finally:
            await engine.dispose()

    try:
        final = asyncio.run(go()).op
    except OpenVLEError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"operation {final.id} {final.state}" + (f": {final.error}" if final.error else ""))
    if final.state != "succeeded":
        raise typer.Exit(1)
