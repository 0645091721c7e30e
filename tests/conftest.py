"""Shared test configuration.

External services (MariaDB, Redis, the MongoDB-wire server) are optional outside CI:
a test that needs an absent one skips with a reason, unless
OPENVLE_TEST_REQUIRE_SERVICES=1, in which case it fails. Use `require_service()`.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("OPENVLE_TEST_REQUIRE_SERVICES", "") not in {"", "0", "false"}


def require_service(name: str, reason: str) -> None:
    """Skip (or, in CI, fail) the current test because service `name` is unavailable."""
    message = f"{name} unavailable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (OPENVLE_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)
