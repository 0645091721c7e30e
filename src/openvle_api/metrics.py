"""HTTP metrics (a pure ASGI middleware) and the /metrics exposition.

Requests are counted by method, route template (never a raw path: ids would make the
label set unbounded) and status. Operations by kind and state are counted from the
database at scrape time, so every API replica reports the same, right numbers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openvle_core.metrics import REGISTRY

HTTP_REQUESTS = Counter(
    "openvle_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "openvle_http_request_seconds",
    "HTTP request latency by method and route template (streams: until the headers).",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


class HttpMetricsMiddleware:
    """Times each HTTP request and counts it under its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = _route_of(scope)
                HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_REQUESTS.labels(scope["method"], _route_of(scope), str(status)).inc()


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(unmatched)"


class OperationCounts(Collector):
    """`openvle_operations_current{kind,state}` from counts read just before the scrape."""

    def __init__(self, counts: dict[tuple[str, str], int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "openvle_operations_current",
            "Operations in the database by kind and state (read at scrape time).",
            labels=["kind", "state"],
        )
        for (kind, state), count in sorted(self.counts.items()):
            family.add_metric([kind, state], count)
        yield family


def scrape_registry(counts: dict[tuple[str, str], int]) -> CollectorRegistry:
    """A throwaway registry with the DB-derived families of this scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OperationCounts(counts))
    return registry
