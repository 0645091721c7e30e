"""services: TODO docstring."""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE_SERVICES = os.environ.get("OPENVLE_TEST_REQUIRE_SERVICES", "") not in {"", "0", "false"}


def require_service(name: str, reason: str) -> None:
    """Skip (or, in CI, fail) the current test because service `name` is unavailable."""
    message = f"{name} unavailable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (OPENVLE_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


MARIADB_HOST = os.environ.get("OPENVLE_TEST_MARIADB", "root@127.0.0.1:3306")


REDIS_HOST = os.environ.get("OPENVLE_TEST_REDIS", "127.0.0.1:6379")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
