"""`openvle doctor`: what is wrong with the setup, and the command that fixes each thing.

`run_doctor(settings)` checks the database, Redis, MongoDB and Proxmox (reachability,
TLS with the certificate's SHA-256 fingerprint when verification fails, the token, the
PVE version, the pool, the token's privileges per feature for that version, what the
token may reach outside its pool, the guest agent on a sample VM).
`proxmox_checks(client, settings)` is the Proxmox part alone, for the API's
GET /api/v1/system/proxmox. Each `Check` carries the exact commands
(`pveum ...`) that fix a failure; the fix texts live in `doctor_fixes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from openvle_core import doctor_fixes as fixes
from openvle_core.proxmox import (
    ProxmoxAuthFailed,
    ProxmoxClient,
    ProxmoxError,
    ProxmoxNotFound,
    ProxmoxPermissionDenied,
    ProxmoxTlsError,
    ProxmoxUnavailable,
    RetryPolicy,
    build_http_client,
)
from openvle_core.proxmox.models import ExcessPrivilege
from openvle_core.redisconn import redis_client
from openvle_core.settings import Settings

CHECK_TIMEOUT = 10.0
SUPPORTED_MAJOR = (8, 9)


class Status(StrEnum):
    """Outcome of one check: FAIL makes the doctor exit non-zero, WARN does not."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": list(self.fix),
        }


@dataclass
class DoctorReport:
    """Every check in the order run; `ok` is False when any failed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status is not Status.FAIL for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


async def run_doctor(settings: Settings) -> DoctorReport:
    """Run every check against what `settings` configures."""
    report = DoctorReport([Check("settings", Status.OK, "configuration is valid")])
    report.checks.append(await check_database(settings))
    report.checks.append(await check_redis(settings))
    report.checks.append(await check_mongodb(settings))
    policy = RetryPolicy(attempts=1, total_time=CHECK_TIMEOUT)
    try:
        http = build_http_client(settings.proxmox)
    except (OSError, ssl.SSLError) as exc:  # PVE_VERIFY_SSL names a missing or bad file
        detail = f"PVE_VERIFY_SSL={settings.proxmox.verify_ssl}: cannot load the CA bundle ({exc})"
        report.checks.append(
            Check("proxmox", Status.FAIL, detail, fixes.tls(settings.proxmox.hostname))
        )
        return report
    async with http:
        client = ProxmoxClient(http, settings.proxmox, retry=policy)
        report.checks.extend(await proxmox_checks(client, settings))
    return report


async def check_database(settings: Settings) -> Check:
    """Connect, and compare the schema revision with the newest migration."""
    from openvle_core.db.migrate import current_revision, head_revision

    url = settings.database.url.get_secret_value()
    path = sqlite_file(url)
    if path is not None and not path.exists():  # do not create an empty file by looking
        return Check(
            "database",
            Status.FAIL,
            f"the SQLite file {path} does not exist (DATABASE_URL)",
            ("openvle migrate",),
        )
    try:
        current = await asyncio.wait_for(current_revision(url), CHECK_TIMEOUT)
    except Exception as exc:  # any driver error means "cannot use the database"
        return Check("database", Status.FAIL, _error_text(exc), fixes.DATABASE)
    head = head_revision()
    if current != head:
        found = f"schema at {current}" if current else "no tables: it was never migrated"
        return Check("database", Status.FAIL, f"{found}, newest {head}", ("openvle migrate",))
    return Check("database", Status.OK, f"reachable, schema at {head}")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


async def check_redis(settings: Settings) -> Check:
    """PING Redis when REDIS_URL is set (else jobs run in the API process)."""
    if settings.redis.url is None:
        return Check("redis", Status.SKIP, "REDIS_URL unset: operations run in-process")
    client = redis_client(settings.redis, timeout=CHECK_TIMEOUT)
    try:
        await asyncio.wait_for(client.ping(), CHECK_TIMEOUT)
    except Exception as exc:  # connection refused, auth, timeout
        return Check("redis", Status.FAIL, _error_text(exc), fixes.REDIS)
    finally:
        await client.aclose()
    return Check("redis", Status.OK, "PING answered")


async def check_mongodb(settings: Settings) -> Check:
    """Ping MongoDB when MONGODB_URL is set (else the snapshot lives in SQL)."""
    if settings.mongodb.url is None:
        return Check("mongodb", Status.SKIP, "MONGODB_URL unset: snapshot stored in SQL")
    from pymongo import AsyncMongoClient

    ms = int(CHECK_TIMEOUT * 1000)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb.url.get_secret_value(), serverSelectionTimeoutMS=ms, connectTimeoutMS=ms
    )
    try:
        await client[settings.mongodb.database].command("ping")
    except Exception as exc:  # server selection timeout, auth
        return Check("mongodb", Status.FAIL, _error_text(exc), fixes.MONGODB)
    finally:
        await client.close()
    return Check("mongodb", Status.OK, "ping answered")


async def proxmox_checks(client: ProxmoxClient, settings: Settings) -> list[Check]:
    """Reachability, TLS, token, version, pool, privileges, guest agent (stops early)."""
    first = await _check_version(client, settings)
    checks = [first]
    if first.status is Status.FAIL:
        return checks
    if settings.proxmox.verify_ssl is False:
        fingerprint = await certificate_fingerprint(settings.proxmox.hostname)
        detail = f"PVE_VERIFY_SSL=false: certificate not verified (SHA-256 {fingerprint})"
        checks.append(Check("tls", Status.WARN, detail, fixes.tls(settings.proxmox.hostname)))
    checks.append(await _check_pool(client, settings))
    checks.extend(await _check_privileges(client, settings))
    checks.append(await _check_agent(client, settings))
    return checks


async def _check_version(client: ProxmoxClient, settings: Settings) -> Check:
    pve = settings.proxmox
    try:
        version = await client.version()
    except ProxmoxTlsError as exc:
        fingerprint = await certificate_fingerprint(pve.hostname)
        detail = (
            f"TLS verification failed ({exc.message}); server certificate SHA-256 {fingerprint}"
        )
        return Check("proxmox", Status.FAIL, detail, fixes.tls(pve.hostname))
    except ProxmoxUnavailable as exc:
        return Check(
            "proxmox", Status.FAIL, f"unreachable: {exc.message}", fixes.unreachable(pve.hostname)
        )
    except ProxmoxAuthFailed as exc:
        return Check(
            "proxmox",
            Status.FAIL,
            f"token rejected: {exc.message}",
            fixes.token(pve.user, pve.token_name),
        )
    except ProxmoxError as exc:
        return Check("proxmox", Status.FAIL, _error_text(exc))
    if version.major_minor[0] not in SUPPORTED_MAJOR:
        return Check("proxmox", Status.FAIL, f"PVE {version.version} is not supported (8.x, 9.x)")
    return Check("proxmox", Status.OK, f"PVE {version.version} at {pve.hostname}, token accepted")


async def _check_pool(client: ProxmoxClient, settings: Settings) -> Check:
    pool = settings.proxmox.vms_pool
    try:
        found = await client.get_pool()
    except ProxmoxNotFound:
        return Check("pool", Status.FAIL, f"pool {pool} does not exist", fixes.pool(pool))
    except ProxmoxPermissionDenied as exc:
        missing = [(exc.acl_path or f"/pool/{pool}", tuple(exc.privileges) or ("Pool.Audit",))]
        detail = f"cannot read pool {pool} (missing, or no Pool.Audit on it): {exc.message}"
        fix = (*fixes.pool(pool), *fixes.grants(missing, settings.proxmox))
        return Check("pool", Status.FAIL, detail, fix)
    except ProxmoxError as exc:
        return Check("pool", Status.FAIL, _error_text(exc))
    return Check("pool", Status.OK, f"pool {pool} exists with {len(found.members)} members")


def enabled_features(settings: Settings) -> dict[str, bool]:
    """Which optional features the configuration turns on (missing privileges then fail)."""
    return {
        "core": True,
        "guest_agent": True,
        "migration": True,
        "cloudinit": settings.cloudinit.enabled,
        "ha": settings.vms.ha_enabled,
    }


async def _check_privileges(client: ProxmoxClient, settings: Settings) -> list[Check]:
    try:
        report = await client.check_privileges()
    except ProxmoxError as exc:
        return [Check("privileges", Status.FAIL, _error_text(exc))]
    enabled = enabled_features(settings)
    checks = []
    checks.append(_check_scope(report.excess, settings))
    for feature, missing in report.missing.items():
        name = f"privileges: {feature}"
        if not missing:
            checks.append(Check(name, Status.OK, f"all held (PVE {report.release})"))
            continue
        pairs = [(m.path, tuple(m.privileges)) for m in missing]
        text = "; ".join(f"{' or '.join(privs)} on {path}" for path, privs in pairs)
        status = Status.FAIL if enabled.get(feature, True) else Status.WARN
        suffix = "" if status is Status.FAIL else " (feature disabled)"
        checks.append(
            Check(name, status, f"missing {text}{suffix}", fixes.grants(pairs, settings.proxmox))
        )
    return checks


SHOWN_PATHS = 4
SHOWN_PRIVILEGES = 4
# Named first in the report: what does the most harm outside the pool.
TELLING = ("Permissions.Modify", "Sys.Modify", "VM.Allocate", "VM.Audit", "Datastore.Allocate")


def _check_scope(excess: list[ExcessPrivilege], settings: Settings) -> Check:
    """WARN when the token may see or change anything outside its pool (beyond storage
    space, bridges, node status and HA), with the commands that narrow it."""
    pool = settings.proxmox.vms_pool
    if not excess:
        return Check("token scope", Status.OK, f"no rights outside pool {pool} beyond the needed")
    parts = []
    for item in excess[:SHOWN_PATHS]:
        names = ", ".join(_telling_first(item.privileges)[:SHOWN_PRIVILEGES])
        more = len(item.privileges) - SHOWN_PRIVILEGES
        parts.append(f"{item.path}: {names}" + (f" and {more} more" if more > 0 else ""))
    if len(excess) > SHOWN_PATHS:
        parts.append(f"and {len(excess) - SHOWN_PATHS} more paths")
    detail = (
        f"the token can see or change things outside pool {pool} (other teams' VMs, the "
        f"cluster's configuration): {'; '.join(parts)}"
    )
    paths = [item.path for item in excess]
    return Check("token scope", Status.WARN, detail, fixes.narrow(paths, settings.proxmox))


def _telling_first(privileges: tuple[str, ...]) -> list[str]:
    rank = {priv: i for i, priv in enumerate(TELLING)}
    return sorted(privileges, key=lambda priv: (rank.get(priv, len(TELLING)), priv))


async def _check_agent(client: ProxmoxClient, settings: Settings) -> Check:
    """Ping the guest agent of one running pool VM (it reports IPs and shuts guests down)."""
    try:
        running = [r for r in await client.pool_vms() if r.status == "running" and r.node]
    except ProxmoxError as exc:
        return Check("guest agent", Status.FAIL, _error_text(exc))
    sample = next((r for r in running if not r.template), None)
    if sample is None or sample.vmid is None or sample.node is None:
        return Check("guest agent", Status.SKIP, "no running VM in the pool to ask")
    try:
        await client.agent_ping(sample.node, sample.vmid)
    except ProxmoxPermissionDenied as exc:
        pairs = [(exc.acl_path or f"/vms/{sample.vmid}", tuple(exc.privileges))]
        return Check(
            "guest agent",
            Status.FAIL,
            f"VM {sample.vmid}: {exc.message}",
            fixes.grants(pairs, settings.proxmox),
        )
    except ProxmoxError as exc:
        return Check("guest agent", Status.WARN, f"VM {sample.vmid}: {exc.message}", fixes.AGENT)
    return Check("guest agent", Status.OK, f"VM {sample.vmid} on {sample.node} answered a ping")


async def certificate_fingerprint(hostname: str) -> str:
    """SHA-256 of the server's certificate as AA:BB:..., read without verifying it."""
    import hashlib

    host, _, port = hostname.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port), ssl=context), CHECK_TIMEOUT
        )
    except (OSError, TimeoutError, ValueError) as exc:
        return f"unknown ({_error_text(exc)})"
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {str(message).splitlines()[0]}"
