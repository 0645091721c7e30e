"""schemathesis against the OpenAPI document: no 5xx, nothing that breaks the schema.

The app runs under uvicorn in a thread with its own loop and its own runtime (embedded
default: SQLite, in-process queue, the simulator), as `openvle api` would run it.
Examples per operation are bounded to keep the run short.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis import checks

from openvle_api.app import create_app
from openvle_core.db.enums import TokenScope
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.session import create_engine, session_factory, transaction
from openvle_core.tokens.service import create_token
from openvle_pvesim import start_in_thread
from tests.api.kit import make_settings
from tests.api.server import free_port

MAX_EXAMPLES = 8
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.ignored_auth,
]


async def _prepare(url: str) -> str:
    await upgrade_to_head(url)
    engine = create_engine(url)
    try:
        async with transaction(session_factory(engine)) as session:
            _, plain = await create_token(session, "schemathesis", TokenScope.ADMIN)
    finally:
        await engine.dispose()
    return plain


@contextlib.contextmanager
def _server(tmp: Path) -> Iterator[tuple[str, str]]:
    with start_in_thread(version="9.1", tls=True) as sim:
        url = f"sqlite+aiosqlite:///{tmp / 'schemathesis.sqlite3'}"
        token = asyncio.run(_prepare(url))
        app = create_app(make_settings(sim, url))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        try:
            yield f"http://127.0.0.1:{port}", token
        finally:
            server.should_exit = True
            thread.join(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with _server(tmp_path_factory.mktemp("schemathesis")) as pair:
        yield pair


def _document() -> schemathesis.BaseSchema:
    """The app's OpenAPI document (no runtime is needed to build it)."""
    from openvle_core.settings import load_settings

    doc = create_app(load_settings(env_file=None)).openapi()
    schema = schemathesis.openapi.from_dict(doc)
    # streams never end on their own; they are tested in test_streams.py
    return schema.exclude(operation_id=["streamChanges", "streamOperationEvents"])


schema = _document()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_document(case: schemathesis.Case, served: tuple[str, str]) -> None:
    base_url, token = served
    case.call_and_validate(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )
