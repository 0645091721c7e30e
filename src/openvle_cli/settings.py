"""What every command starts from: the settings loaded once, and a database it can use;
otherwise one line saying what is wrong and which command fixes it (never a traceback)."""

from __future__ import annotations

import asyncio

import typer

from openvle_core.settings import ConfigError, Settings, load_settings

NOT_READY_EXIT = 2


def settings_or_exit() -> Settings:
    """The settings from the environment and .env; exit 2 with the problems otherwise."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    from openvle_core.logging import setup_logging

    setup_logging(settings)
    return settings


def database_or_exit(settings: Settings) -> None:
    """Exit 2 with one line unless the database exists and its schema is the newest.

    Checked before any command opens a session: a SQLite file that is missing is not
    created by looking (the default DATABASE_URL is ./openvle.sqlite3), and a database
    that was never migrated is named as such instead of failing on its first query.
    """
    from openvle_core.doctor import Status, check_database

    check = asyncio.run(check_database(settings))
    if check.status is Status.OK:
        return
    fix = "; ".join(check.fix) or "openvle doctor"
    typer.echo(f"database not ready: {check.detail}. Fix: {fix}", err=True)
    raise typer.Exit(NOT_READY_EXIT)


def ready_settings_or_exit() -> Settings:
    """`settings_or_exit` for commands that read or write the database."""
    settings = settings_or_exit()
    database_or_exit(settings)
    return settings
