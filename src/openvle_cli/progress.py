"""`openvle follow OPERATION_ID`: a progress bar for an operation until it finishes.

Reads the operation row from DATABASE_URL every half second (the same database the API
and workers write), so it follows a deploy, a sync or a clone started anywhere: by the
API, another CLI, or a worker's cron. Exit status 0 when it succeeded, 1 when it failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.operations.repository import OperationRepository

FINISHED = {"succeeded", "failed"}


@dataclass(frozen=True)
class OperationView:
    """What the bar shows of one operation."""

    id: str
    kind: str
    target: str
    state: str
    done: int
    total: int
    error: str | None


async def read_operation(sessions: async_sessionmaker[AsyncSession], op_id: str) -> OperationView:
    """The operation's current state (OperationNotFound when there is none)."""
    async with sessions() as session:
        op = await OperationRepository(session).require(op_id)
        return OperationView(
            op.id,
            op.kind,
            f"{op.target_type} {op.target_id or ''}".strip(),
            op.state,
            op.progress_done,
            op.progress_total,
            op.error_message,
        )


async def follow_operation(
    sessions: async_sessionmaker[AsyncSession],
    op_id: str,
    on_update: Callable[[OperationView], None],
    *,
    poll: float = 0.5,
) -> OperationView:
    """Call `on_update` with each new view until the operation finishes; return the last."""
    last: OperationView | None = None
    while True:
        view = await read_operation(sessions, op_id)
        if view != last:
            on_update(view)
            last = view
        if view.state in FINISHED:
            return view
        await asyncio.sleep(poll)


def progress_bar(console: Console) -> Progress:
    """The bar layout: description, bar, done/total, elapsed time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def command(
    operation_id: Annotated[str, typer.Argument(help="The id POST requests answer with.")],
) -> None:
    """Show an operation's progress (a deploy, sync, clone ...) until it finishes."""
    from openvle_cli.settings import ready_settings_or_exit
    from openvle_core.db.session import engine_from_settings, session_factory
    from openvle_core.errors import OpenVLEError

    settings = ready_settings_or_exit()
    console = Console(stderr=True)

    async def go() -> OperationView:
        engine = engine_from_settings(settings.database)
        try:
            with progress_bar(console) as bar:
                task = bar.add_task(operation_id, total=None)

                def show(view: OperationView) -> None:
                    total = view.total or None
                    text = f"{view.kind} {view.target}: {view.state}"
                    bar.update(task, description=text, completed=view.done, total=total)

                return await follow_operation(session_factory(engine), operation_id, show)
        finally:
            await engine.dispose()

    try:
        final = asyncio.run(go())
    except OpenVLEError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"operation {final.id} {final.state}" + (f": {final.error}" if final.error else ""))
    if final.state != "succeeded":
        raise typer.Exit(1)
