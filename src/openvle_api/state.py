"""What the app holds for its requests, typed: one `AppState` per app at `app.state.openvle`.

The lifespan fills in the runtime (unless the caller passed one), the read engines and the
shutdown signal; dependencies read them through `app_state(request)`, never `app.state.*`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_api.auth import Authenticator
from openvle_core.db.session import RowReader
from openvle_core.runtime import Runtime
from openvle_core.settings import Settings


@dataclass
class AppState:
    """The app's settings, runtime, token cache, read engines and stream settings."""

    settings: Settings
    authenticator: Authenticator
    sse_poll: float  # seconds between the database polls of event streams
    runtime: Runtime | None = None  # set by the lifespan unless the caller owns one
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)  # ends event streams
    read_sessions: async_sessionmaker[AsyncSession] | None = None  # SQLite: GETs' own engine
    row_reader: RowReader | None = None  # the hottest reads (readdb.py)

    def require_runtime(self) -> Runtime:
        """The runtime; a RuntimeError if the app is used without its lifespan or one."""
        if self.runtime is None:
            raise RuntimeError("the app has no runtime: serve it with its lifespan")
        return self.runtime


def install_state(app: FastAPI, state: AppState) -> None:
    """Attach `state` to the app."""
    app.state.openvle = state


def app_state(request: Request) -> AppState:
    """The state of the request's app."""
    state: AppState = request.app.state.openvle
    return state
