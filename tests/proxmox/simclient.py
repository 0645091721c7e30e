"""Helpers: settings for a simulator token, a client that records what it sends."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from openvle_core.proxmox import (
    CallStats,
    PollSchedule,
    ProxmoxClient,
    RetryPolicy,
    build_http_client,
)
from openvle_core.settings import ProxmoxSettings
from openvle_pvesim import Simulator

CI_TOKEN = "openvle@pve!ci"
ADMIN_TOKEN = "root@pam!admin"
POOL = "OpenVLE-VMs"
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, total_time=10.0)
FAST_POLL = PollSchedule(first=0.005, factor=1.5, cap=0.05)


def settings_for(
    sim: Simulator,
    token: str = CI_TOKEN,
    *,
    secret: str | None = None,
    verify: bool | Path | None = None,
    pool: str = POOL,
) -> ProxmoxSettings:
    """Settings for `sim` with one of its tokens; verification against its CA by default."""
    values = ProxmoxSettings.values_for(
        sim.hostname,
        token,
        secret if secret is not None else sim.tokens[token],
        sim.ca_file if verify is None else verify,
    )
    return ProxmoxSettings(**values, vms_pool=pool)


@dataclass
class Sent:
    """Requests as they left httpx (an event hook), keyed by (method, path)."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    bodies: dict[tuple[str, str], str] = field(default_factory=dict)

    async def hook(self, request: httpx.Request) -> None:
        path = request.url.path.removeprefix("/api2/json")
        self.requests[(request.method, path)] += 1
        self.bodies[(request.method, path)] = request.content.decode()

    def count(self, method: str, path: str) -> int:
        return self.requests[(method, path)]

    def total(self) -> int:
        return sum(self.requests.values())


@dataclass
class Harness:
    """A simulator, a client on it, what the client sent and what it observed."""

    sim: Simulator
    client: ProxmoxClient
    sent: Sent
    stats: CallStats
    http: httpx.AsyncClient


async def open_harness(
    sim: Simulator, settings: ProxmoxSettings, stack: list[httpx.AsyncClient]
) -> Harness:
    """Build a client on `sim` whose httpx client records each request it sends."""
    sent, stats = Sent(), CallStats()
    http = build_http_client(settings)
    http.event_hooks["request"].append(sent.hook)
    stack.append(http)
    client = ProxmoxClient(http, settings, retry=FAST_RETRY, observer=stats, poll=FAST_POLL)
    return Harness(sim, client, sent, stats, http)
