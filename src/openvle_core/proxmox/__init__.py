"""The async Proxmox VE client: typed models, a typed error tree, pool scope, versions.

Build one `httpx.AsyncClient` per process with `build_http_client(settings)` and wrap it
in `ProxmoxClient(http, settings)`. Errors are documented in `errors`.
"""

from openvle_core.proxmox.client import ProxmoxClient
from openvle_core.proxmox.errors import (
    HaGroupsUnsupported,
    MigrationBlocked,
    OutsidePool,
    ProxmoxAuthFailed,
    ProxmoxBadResponse,
    ProxmoxConflict,
    ProxmoxError,
    ProxmoxNotFound,
    ProxmoxPermissionDenied,
    ProxmoxTaskFailed,
    ProxmoxTaskTimeout,
    ProxmoxTlsError,
    ProxmoxUnavailable,
    ProxmoxValidationError,
)
from openvle_core.proxmox.observe import CallStats, NullObserver, ProxmoxObserver
from openvle_core.proxmox.retry import RetryPolicy
from openvle_core.proxmox.tasks import PollSchedule, Upid
from openvle_core.proxmox.transport import build_http_client

__all__ = [
    "CallStats",
    "HaGroupsUnsupported",
    "MigrationBlocked",
    "NullObserver",
    "OutsidePool",
    "PollSchedule",
    "ProxmoxAuthFailed",
    "ProxmoxBadResponse",
    "ProxmoxClient",
    "ProxmoxConflict",
    "ProxmoxError",
    "ProxmoxNotFound",
    "ProxmoxObserver",
    "ProxmoxPermissionDenied",
    "ProxmoxTaskFailed",
    "ProxmoxTaskTimeout",
    "ProxmoxTlsError",
    "ProxmoxUnavailable",
    "ProxmoxValidationError",
    "RetryPolicy",
    "Upid",
    "build_http_client",
]
