"""Errors raised by the Proxmox client.

Every failure that leaves `openvle_core.proxmox` is one of these; httpx errors and PVE
error responses are translated in one place (`translate_response` / `translate_transport`,
called only from `transport.ApiCaller`) and chained with `raise ... from exc`.

    OpenVLEError
    └── ProxmoxError                 any Proxmox failure (unclassified 5xx/501 land here)
        ├── ProxmoxUnavailable       transient: connect/read timeouts, connection resets,
        │                            502/503/595/596, `can't lock file ... got timeout`;
        │                            `retry_safe` is True when the request provably did
        │                            nothing (connect error, synchronous lock timeout)
        ├── ProxmoxBadResponse       the body is not the JSON envelope the schema promises
        ├── ProxmoxTlsError          the certificate did not verify (PVE_VERIFY_SSL)
        ├── ProxmoxAuthFailed        401: bad, expired or unknown token (with a hint)
        ├── ProxmoxPermissionDenied  403: `path` and `privileges` parsed from the message
        ├── ProxmoxValidationError   400: `errors` maps parameter -> PVE's message
        ├── ProxmoxNotFound          missing VM, node, pool or task  (also NotFoundError)
        │   └── OutsidePool          the vmid is not in our pool; raised before any request
        ├── ProxmoxConflict          `VM is locked (...)`, `already exists`, wrong power
        │   │                        state, stale digest               (also ConflictError)
        │   └── MigrationBlocked     the migrate precondition check said no
        ├── ProxmoxTaskFailed        a task ended with an error: `exitstatus`, `log_tail`
        └── ProxmoxTaskTimeout       a task did not finish within the wait's timeout
"""

from __future__ import annotations

import re

from openvle_core.errors import ConflictError, NotFoundError, OpenVLEError

_PERM_RE = re.compile(r"Permission check failed \((?P<path>/[^,)]*), (?P<privs>[^)]+)\)")
_LOCK_RE = re.compile(r"VM is locked \((?P<lock>[^)]*)\)")
_NOT_FOUND_MARKERS = (
    "does not exist",
    "no such cluster node",
    "no such task",
    "not HA managed",
)
_CONFLICT_MARKERS = (
    "VM is locked",
    "already exists",
    "already defined",
    "already a pool member",
    "belongs already to pool",
    "checksum mismatch",
    "not running",
    "is running",
    "already running",
    "is paused",
    "protection mode enabled",
    "used in HA resources",
)
_TRANSIENT_STATUSES = frozenset({502, 503, 595, 596, 597, 598, 599})
AUTH_HINT = (
    "check PVE_USER/PVE_TOKEN_NAME/PVE_TOKEN_VALUE: the header is "
    "'PVEAPIToken=USER@REALM!TOKENID=SECRET'; a token with privilege separation "
    "(privsep=1) only has the privileges granted to the token itself"
)


class ProxmoxError(OpenVLEError):
    """A Proxmox call failed; `status` is the HTTP status (None for transport errors)."""

    code = "proxmox_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.errors: dict[str, str] = dict(errors or {})


class ProxmoxUnavailable(ProxmoxError):
    """Transient: Proxmox (or the proxied node) could not answer now; retrying may help."""

    code = "proxmox_unavailable"
    retry_safe: bool = False


class ProxmoxBadResponse(ProxmoxError):
    """The response is not the `{"data": ...}` envelope, or does not fit the schema."""

    code = "proxmox_bad_response"


class ProxmoxTlsError(ProxmoxError):
    """TLS verification of the Proxmox certificate failed: permanent, not a network blip."""

    code = "proxmox_tls_error"


class ProxmoxAuthFailed(ProxmoxError):
    """401: the token was refused. The message carries a hint about its format."""

    code = "proxmox_auth_failed"


class ProxmoxPermissionDenied(ProxmoxError):
    """403; `acl_path` and `privileges` are parsed from `Permission check failed (...)`."""

    code = "proxmox_permission_denied"

    @property
    def acl_path(self) -> str | None:
        """The ACL path PVE checked, e.g. `/vms/100` (None for a bare message)."""
        match = _PERM_RE.search(self.message)
        return match["path"] if match else None

    @property
    def privileges(self) -> tuple[str, ...]:
        """The privileges PVE wanted; several means any one of them would do."""
        match = _PERM_RE.search(self.message)
        return tuple(match["privs"].split("|")) if match else ()


class ProxmoxValidationError(ProxmoxError):
    """400 `Parameter verification failed.`; `errors` maps each parameter to its problem."""

    code = "proxmox_validation_error"


class HaGroupsUnsupported(ProxmoxValidationError):
    """An HA group was asked of PVE 9, which has none (they were migrated to HA rules)."""

    code = "proxmox_ha_groups_unsupported"


class ProxmoxNotFound(ProxmoxError, NotFoundError):
    """The VM, node, pool or task does not exist."""

    code = "proxmox_not_found"


class OutsidePool(ProxmoxNotFound):
    """The vmid is not a member of our pool: refused before any request is sent."""

    code = "outside_pool"

    def __init__(self, vmid: int, pool: str) -> None:
        super().__init__(f"VM {vmid} is not in pool '{pool}'")
        self.vmid = vmid
        self.pool = pool


class ProxmoxConflict(ProxmoxError, ConflictError):
    """The VM's state forbids the call now (locked, exists, running, stale digest)."""

    code = "proxmox_conflict"

    @property
    def lock(self) -> str | None:
        """The config lock named in `VM is locked (clone)`, if that was the cause."""
        match = _LOCK_RE.search(self.message)
        return match["lock"] if match else None


class MigrationBlocked(ProxmoxConflict):
    """The migrate precondition check refused the target node."""

    code = "migration_blocked"


class ProxmoxTaskFailed(ProxmoxError):
    """A task stopped with an error; `exitstatus` and the last log lines are kept."""

    code = "proxmox_task_failed"

    def __init__(self, upid: str, exitstatus: str, log_tail: list[str]) -> None:
        super().__init__(f"task {upid} failed: {exitstatus}")
        self.upid = upid
        self.exitstatus = exitstatus
        self.log_tail = log_tail

    @property
    def lock_timeout(self) -> bool:
        """True when the task lost a lock race (`can't lock file ... got timeout`)."""
        return "got timeout" in self.exitstatus or "lock request timeout" in self.exitstatus


class ProxmoxTaskTimeout(ProxmoxError):
    """The task (or the state it leads to) was not reached within the wait's timeout."""

    code = "proxmox_task_timeout"

    def __init__(self, upid: str, timeout: float, detail: str | None = None) -> None:
        super().__init__(detail or f"task {upid} still running after {timeout:g}s")
        self.upid = upid
        self.timeout = timeout


def translate_response(
    status: int, message: str, errors: dict[str, str] | None, *, method: str, path: str
) -> ProxmoxError:
    """Map a PVE error response (status, message, `errors`) to the matching class."""
    text = message.strip()
    errors = errors or {}
    everything = " ".join([text, *errors.values()])
    cls: type[ProxmoxError] = ProxmoxError
    if status == 401:
        cls, text = ProxmoxAuthFailed, f"{text or 'authentication failed'} ({AUTH_HINT})"
    elif status == 403:
        cls = ProxmoxPermissionDenied
    elif status in _TRANSIENT_STATUSES or "got timeout" in text or "lock request timeout" in text:
        cls = ProxmoxUnavailable
    elif any(marker in everything for marker in _CONFLICT_MARKERS):
        cls = ProxmoxConflict
    elif any(marker in everything for marker in _NOT_FOUND_MARKERS):
        cls = ProxmoxNotFound
    elif status == 400:
        cls = ProxmoxValidationError
    text = _with_errors(text, errors) or f"HTTP {status}"
    error = cls(text, status=status, method=method, path=path, errors=errors)
    if isinstance(error, ProxmoxUnavailable):
        # A synchronous lock timeout is refused before the handler did anything.
        error.retry_safe = status == 500 and "can't lock file" in text
    return error


def _with_errors(text: str, errors: dict[str, str]) -> str:
    """`Parameter verification failed.` alone says nothing; append the per-field errors."""
    if not errors:
        return text
    details = "; ".join(f"{key}: {value.strip()}" for key, value in sorted(errors.items()))
    return f"{text} ({details})" if text else details
