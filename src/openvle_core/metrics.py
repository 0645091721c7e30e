"""Prometheus metrics of the service, defined once in a registry of our own.

Core code records into these; `openvle_api` serves `REGISTRY` at /metrics and so does
`openvle worker` (on WORKER_METRICS_PORT), both through `exposition` and behind the same
`bearer_token_ok` rule. Labels stay bounded: Proxmox endpoints are schema path templates,
operation kinds and error kinds are class or enum names, never ids.

Several processes behind one port (`openvle api --workers N`) use prometheus_client's
multiprocess mode: the command sets PROMETHEUS_MULTIPROC_DIR before its processes start,
each writes its values to files there, and `exposition` sums them (gauges: the value most
recently set by any process).
"""

from __future__ import annotations

import os
import secrets

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import SecretStr

REGISTRY = CollectorRegistry(auto_describe=True)

PROXMOX_REQUESTS = Counter(
    "openvle_proxmox_requests",
    "Proxmox API requests (attempts), by method, endpoint template and HTTP status.",
    ["method", "endpoint", "status"],
    registry=REGISTRY,
)
PROXMOX_LATENCY = Histogram(
    "openvle_proxmox_request_seconds",
    "Latency of Proxmox API requests.",
    ["method", "endpoint"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROXMOX_ERRORS = Counter(
    "openvle_proxmox_errors",
    "Proxmox API errors by kind (error class name).",
    ["kind"],
    registry=REGISTRY,
)
PROXMOX_RETRIES = Counter(
    "openvle_proxmox_retries",
    "Retries of transient Proxmox failures.",
    ["method", "endpoint"],
    registry=REGISTRY,
)
OPERATIONS = Counter(
    "openvle_operations",
    "Operations that finished, by kind and final state.",
    ["kind", "state"],
    registry=REGISTRY,
)
OPERATION_SECONDS = Histogram(
    "openvle_operation_seconds",
    "Duration of finished operations by kind.",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
OPERATION_RETRIES = Counter(
    "openvle_operation_retries",
    "Transient failures retried inside operations, by kind and error kind.",
    ["kind", "error"],
    registry=REGISTRY,
)
SYNC_SECONDS = Histogram(
    "openvle_sync_seconds",
    "Duration of cluster syncs.",
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SYNC_RUNS = Counter(
    "openvle_sync_runs",
    "Cluster syncs by outcome (ok, failed).",
    ["outcome"],
    registry=REGISTRY,
)
SYNC_RESOURCES = Gauge(
    "openvle_sync_resources",
    "Cluster resources seen by the last sync.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
SYNC_IPV4_DUPLICATES = Gauge(
    "openvle_sync_ipv4_duplicates",
    "Running VMs reporting an IPv4 another running VM reports too, at the last sync.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
SYNC_CHANGES = Counter(
    "openvle_sync_changes",
    "Changes written by syncs (changelog entries).",
    registry=REGISTRY,
)
SYNC_FOREIGN = Counter(
    "openvle_sync_foreign_guests",
    "Guests the sync found on a VM's or template's vmid that are not its guest (once each).",
    registry=REGISTRY,
)
SYNC_UNMANAGED = Gauge(
    "openvle_sync_unmanaged_guests",
    "Pool guests the last sync found that are not ours (unknown, or on a row's reused vmid).",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
SYNC_LOCK_LOST = Counter(
    "openvle_sync_lock_lost",
    "Syncs whose Redis lock was lost while they ran (not renewed in time, or Redis lost it).",
    registry=REGISTRY,
)
IDENTITY_REFUSALS = Counter(
    "openvle_identity_refusals",
    "Calls refused because the guest at the vmid was not provably ours, by action.",
    ["action"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "openvle_queue_depth",
    "Operations waiting in the queue.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
DEPENDENCY_UP = Gauge(
    "openvle_dependency_up",
    "1 while a dependency answered this process's last call, 0 during an outage.",
    ["dependency"],
    registry=REGISTRY,
    multiprocess_mode="livemin",  # `api --workers N`: 0 when any live process sees it down
)
DEPENDENCY_OUTAGES = Counter(
    "openvle_dependency_outages",
    "Outages this process saw (a first failure after a success), by dependency.",
    ["dependency"],
    registry=REGISTRY,
)
UNAVAILABLE_RESPONSES = Counter(
    "openvle_unavailable_responses",
    "API requests answered 503 because a dependency was down (database, redis).",
    ["dependency"],
    registry=REGISTRY,
)
WORKER_JOB_CRASHES = Counter(
    "openvle_worker_job_crashes",
    "Operation jobs whose exception escaped run_operation (row marked failed), by transport.",
    ["transport"],
    registry=REGISTRY,
)
LEASE_LOST = Counter(
    "openvle_lease_lost",
    "Operation runs stopped because their lease expired without a renewal, by kind.",
    ["kind"],
    registry=REGISTRY,
)
CLONE_SLOT_WAIT = Histogram(
    "openvle_clone_slot_wait_seconds",
    "Time a clone waited for its cluster-wide slot (Redis), by slot kind.",
    ["slot"],
    registry=REGISTRY,
)
CLONE_SLOT_ERRORS = Counter(
    "openvle_clone_slot_errors",
    "Clone-slot leases: renewals or releases that failed, leases lost, by step.",
    ["step"],
    registry=REGISTRY,
)
EVENT_DEPLOYS_REFUSED = Counter(
    "openvle_event_deploys_refused",
    "Scheduled event deploys not started because the event did not fit (its plan's problems).",
    registry=REGISTRY,
)
PLACEMENTS_REFUSED = Counter(
    "openvle_placements_refused",
    "Clones no node could take (memory, storage, offline): the clone failed with no_capacity.",
    registry=REGISTRY,
)


class PrometheusObserver:
    """A `ProxmoxObserver` (openvle_core.proxmox.observe) feeding the metrics above."""

    def request_done(
        self, method: str, endpoint: str, status: int | None, seconds: float, error: str | None
    ) -> None:
        """Count the attempt, its latency and its error kind."""
        PROXMOX_REQUESTS.labels(method, endpoint, str(status or 0)).inc()
        PROXMOX_LATENCY.labels(method, endpoint).observe(seconds)
        if error is not None:
            PROXMOX_ERRORS.labels(error).inc()

    def retrying(self, method: str, endpoint: str, error: str) -> None:
        """Count the retry."""
        PROXMOX_RETRIES.labels(method, endpoint).inc()


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def exposition(*extra: CollectorRegistry) -> bytes:
    """The text format of `REGISTRY` (summed over this port's processes in multiprocess
    mode), followed by the `extra` registries (families computed at scrape time)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return body + b"".join(generate_latest(r) for r in extra)


def bearer_token_ok(authorization: str | None, expected: SecretStr | None) -> bool:
    """The METRICS_TOKEN rule of every /metrics: open when no token is set, else the
    `Authorization: Bearer <token>` header must match (compared in constant time)."""
    if expected is None:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    secret = expected.get_secret_value().encode()
    return scheme.lower() == "bearer" and secrets.compare_digest(token.encode(), secret)
