"""The settings every command starts from: loaded once, or one line saying what is wrong."""

from __future__ import annotations

import typer

from openvle_core.settings import ConfigError, Settings, load_settings


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
