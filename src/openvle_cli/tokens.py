"""`openvle token create|list|revoke`: API tokens; the secret is printed once, at creation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import TokenScope
from openvle_core.db.session import engine_from_settings, session_factory, transaction
from openvle_core.db.types import utcnow
from openvle_core.errors import OpenVLEError
from openvle_core.tokens import service

app = typer.Typer(
    help="API tokens (stored hashed; scopes read < operate < admin).", rich_markup_mode=None
)
HEADER = ("id", "name", "prefix", "scope", "created", "last used", "state")
T = TypeVar("T")


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed unit of work on DATABASE_URL."""
    from openvle_cli.settings import ready_settings_or_exit

    settings = ready_settings_or_exit()

    async def go() -> T:
        engine = engine_from_settings(settings.database)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except OpenVLEError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses it, e.g. 'frontend'.")],
    scope: Annotated[TokenScope, typer.Option(help="read, operate or admin.")] = TokenScope.READ,
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Days until it expires (default: never).")
    ] = None,
) -> None:
    """Create a token and print it (this is the only time it is shown)."""
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None

    async def work(session: AsyncSession) -> tuple[str, str]:
        row, plain = await service.create_token(session, name, scope, expires_at=expires)
        return row.id, plain

    token_id, plain = _run(work)
    typer.echo(f"created token {token_id} ({name}, scope {scope.value}); it is shown only once:")
    typer.echo(plain)


@app.command("list")
def list_() -> None:
    """List tokens: id, name, prefix, scope, created, last used, state (never secrets)."""

    async def work(session: AsyncSession) -> list[tuple[str, ...]]:
        return [
            (
                r.id,
                r.name,
                r.prefix + "...",
                r.scope,
                f"{r.created_at:%Y-%m-%d %H:%M}",
                f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never",
                f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active",
            )
            for r in await service.list_tokens(session)
        ]

    for line in aligned([HEADER, *_run(work)]):
        typer.echo(line)


def aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as lines whose columns start at the same place (two spaces between them)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


@app.command()
def revoke(token_id: Annotated[str, typer.Argument(help="The id `token list` shows.")]) -> None:
    """Revoke a token (API processes stop accepting it within a few seconds)."""

    async def work(session: AsyncSession) -> str:
        return (await service.revoke_token(session, token_id)).name

    typer.echo(f"revoked token {token_id} ({_run(work)})")
