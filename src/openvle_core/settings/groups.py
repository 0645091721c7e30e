"""The settings groups, one per concern, each reading its own prefix (`PVE_`, `DATABASE_`, ...)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./openvle.sqlite3"


class ProxmoxSettings(BaseSettings):
    """How to reach Proxmox VE and which pool is ours (`PVE_*` variables)."""

    model_config = SettingsConfigDict(env_prefix="PVE_", env_file=".env", extra="ignore")

    hostname: str = Field(
        default="127.0.0.1:8006", description="Proxmox API endpoint as host:port (https)."
    )
    user: str = Field(default="openvle@pve", description="User that owns the API token.")
    token_name: str = Field(default="openvle", description="API token id (the part after !).")
    token_value: SecretStr = Field(default=SecretStr(""), description="API token secret.")
    verify_ssl: bool | Path = Field(
        default=True, description="Verify the TLS certificate: true, false, or a CA bundle path."
    )
    vms_pool: str = Field(default="OpenVLE-VMs", description="The pool OpenVLE owns.")
    connect_timeout: float = Field(default=5.0, gt=0, description="TCP/TLS connect timeout, s.")
    read_timeout: float = Field(default=30.0, gt=0, description="Read timeout per request, s.")
    http_transport: Literal["openvle", "httpcore"] = Field(
        default="openvle",
        description="Connection pool: openvle (lean HTTP/1.1 keep-alive) or httpcore (httpx's).",
    )
    retry_attempts: int = Field(
        default=4, ge=1, description="Tries per idempotent call on transient errors."
    )
    retry_total_time: float = Field(
        default=60.0, gt=0, description="Time budget per call across its retries, s."
    )
    agent_ignored_networks: list[ipaddress.IPv4Network] = Field(
        default_factory=lambda: [ipaddress.IPv4Network("172.17.0.0/16")],
        description="Guest-agent IPv4 ranges never taken as the VM's address (JSON list).",
    )
    memory_overcommit: float = Field(
        default=1.5,
        ge=0.1,
        le=10.0,
        description=(
            "Placement: a node takes a clone while its free memory times this ratio covers "
            "the VM's memory (as OpenStack Nova's RAM allocation ratio; 1.0: no overcommit)."
        ),
    )

    @field_validator("hostname")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. pve1.example.org:8006")
        return value

    @field_validator("verify_ssl")
    @classmethod
    def _ca_bundle_exists(cls, value: bool | Path) -> bool | Path:
        if isinstance(value, Path) and not value.is_file():
            raise ValueError(
                f"must be true, false, or the path of a CA bundle file; {value} is none"
            )
        return value

    @staticmethod
    def values_for(
        hostname: str, token_id: str, secret: str, verify: bool | Path
    ) -> dict[str, Any]:
        """Field values that reach `hostname` with the token `USER@REALM!NAME` and `secret`.

        For `load_settings(proxmox=...)` where there is no environment: the demo, tests and
        benchmarks pointing the service at the simulator.
        """
        user, _, name = token_id.partition("!")
        return {
            "hostname": hostname,
            "user": user,
            "token_name": name,
            "token_value": SecretStr(secret),
            "verify_ssl": verify,
        }

    @property
    def token_id(self) -> str:
        """The full token id, `USER@REALM!TOKENID`."""
        return f"{self.user}!{self.token_name}"

    @property
    def base_url(self) -> str:
        """The API root, `https://HOST:PORT/api2/json`."""
        return f"https://{self.hostname}/api2/json"


class VmDefaults(BaseSettings):
    """How new VMs are made (`PVE_VMS_*` variables other than networking)."""

    model_config = SettingsConfigDict(env_prefix="PVE_VMS_", env_file=".env", extra="ignore")

    full_clone_default: bool = Field(
        default=False, description="Full clones when a request does not say; else linked clones."
    )
    smbios_metadata: bool = Field(
        default=True, description="Write SMBIOS type 1 metadata (serial = VM UUID) at clone time."
    )
    ha_enabled: bool = Field(
        default=True, description="Register event VMs as HA resources (`vm:<vmid>`)."
    )


class DatabaseSettings(BaseSettings):
    """Where OpenVLE keeps its state (`DATABASE_*`)."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", env_file=".env", extra="ignore")

    url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        description="SQLAlchemy async URL: mysql+asyncmy://... or sqlite+aiosqlite:///PATH.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(default=10, ge=1, description="Connections per process (MariaDB).")
    migrate_lock: Literal["auto", "advisory", "table"] = Field(
        default="auto",
        description=(
            "How `openvle migrate` serialises replicas on MariaDB: advisory (GET_LOCK), "
            "table (a replicated lease row, for Galera), auto (table on Galera, else advisory)."
        ),
    )

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().partition("://")[0]
        if scheme not in {"mysql+asyncmy", "mariadb+asyncmy", "sqlite+aiosqlite"}:
            raise ValueError("must start with mysql+asyncmy:// or sqlite+aiosqlite://")
        return value


class MongoSettings(BaseSettings):
    """The cluster-resource snapshot store (`MONGODB_*`); unset URL = snapshot in SQL."""

    model_config = SettingsConfigDict(env_prefix="MONGODB_", env_file=".env", extra="ignore")

    url: SecretStr | None = Field(default=None, description="mongodb:// URL; unset = use SQL.")
    database: str = Field(default="openvle", description="MongoDB database name.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value


class RedisSettings(BaseSettings):
    """The job queue and the locks (`REDIS_*`); unset URL = jobs run in-process."""

    model_config = SettingsConfigDict(env_prefix="REDIS_", env_file=".env", extra="ignore")

    url: SecretStr | None = Field(
        default=None,
        description=(
            "redis://, rediss:// (TLS) or unix:// URL; unset = in-process. With sentinels, "
            "its password, database number and scheme are used and its host is not."
        ),
    )
    sentinels: str = Field(
        default="",
        description=(
            "Redis Sentinel addresses, host:port,host:port; set = the master is found "
            "through them (REDIS_URL still required)."
        ),
    )
    sentinel_master: str = Field(
        default="mymaster", min_length=1, description="The master's name in Sentinel."
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="CA bundle for a rediss:// server's certificate; unset = the system's CAs.",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr | None) -> SecretStr | None:
        return redis_url(value)

    @field_validator("sentinels")
    @classmethod
    def _host_ports(cls, value: str, info: ValidationInfo) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item!r} is not host:port (e.g. sentinel1:26379)")
        if items and info.data.get("url") is None:
            raise ValueError("needs REDIS_URL too (its password, database number and scheme)")
        if items and str(info.data["url"].get_secret_value()).startswith("unix://"):
            raise ValueError("needs a redis:// or rediss:// REDIS_URL, not unix://")
        return ",".join(items)

    @field_validator("tls_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None or not str(value):
            return None
        if not value.is_file():
            raise ValueError(f"{value} is not a file")
        url = info.data.get("url")
        if url is None or not url.get_secret_value().startswith("rediss://"):
            raise ValueError("applies to a rediss:// REDIS_URL only")
        if info.data.get("sentinels"):
            raise ValueError(
                "cannot be combined with REDIS_SENTINELS: arq hands no CA file to a "
                "Sentinel-managed master; add the CA to the system's store (or SSL_CERT_FILE)"
            )
        return value

    @property
    def sentinel_hosts(self) -> list[tuple[str, int]]:
        """REDIS_SENTINELS as (host, port) pairs (empty: no Sentinel)."""
        pairs = [item.rpartition(":") for item in self.sentinels.split(",") if item]
        return [(host.strip("[]"), int(port)) for host, _, port in pairs]


def redis_url(value: SecretStr | None) -> SecretStr | None:
    """A Redis URL (redis://, rediss://, unix://); empty = None."""
    if value is None or not value.get_secret_value():
        return None
    if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


class WorkerSettings(BaseSettings):
    """Worker behaviour: sync period, retries, concurrency, event schedule (`WORKER_*`)."""

    model_config = SettingsConfigDict(env_prefix="WORKER_", env_file=".env", extra="ignore")

    pve_periodic_interval: int = Field(default=60, ge=1, description="Seconds between syncs.")
    max_retry: int = Field(default=5, ge=0, description="Retries of a transient Proxmox failure.")
    retry_backoff_scale: float = Field(
        default=1.0,
        gt=0,
        description="Multiplies retry delays (clone 10/30/60 s, actions 5/10/15).",
    )
    max_jobs: int = Field(default=10, ge=1, description="Operations one worker runs at once.")
    clones_per_node: int = Field(default=4, ge=1, description="Parallel clones per target node.")
    full_clones_per_storage: int = Field(
        default=1, ge=1, description="Parallel full clones per non-shared storage."
    )
    clones_per_storage: int = Field(
        default=8, ge=1, description="Parallel clones per storage (linked or full)."
    )
    clone_caps_key: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._:-]*$",
        description="Name of the clone-caps budget in Redis; instances with the same name "
        "(and Redis) share one (empty = PVE_HOSTNAME).",
    )
    clone_caps_redis_url: SecretStr | None = Field(
        default=None,
        description="redis:// URL of the clone caps when they are shared with another "
        "instance (unset = REDIS_URL).",
    )
    event_parallel_vms: int = Field(
        default=32, ge=1, description="VMs one event deploy or archive works on at once."
    )
    agent_ip_timeout: float = Field(
        default=120.0, gt=0, description="Seconds to wait for a VM's IPv4 via the guest agent."
    )
    agent_ip_first_poll: float = Field(
        default=20.0,
        gt=0,
        description=(
            "Seconds after a start before the guest agent is first asked for the IPv4 "
            "(a cloud image boots and leases its address first, typically 15-20 s after "
            "the start request); later asks follow at growing pauses from a quarter of it. "
            "The periodic sync asks a running VM lacking an IPv4 once it has been up this long."
        ),
    )
    shutdown_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a VM's graceful (ACPI) shutdown may take (then fails or forced).",
    )
    stop_timeout: float = Field(
        default=20.0,
        ge=0,
        description=(
            "Seconds `openvle worker` lets its running operations finish after SIGTERM; "
            "the rest are handed back (another worker resumes them at once)."
        ),
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description=(
            "Port of `openvle worker`'s /metrics, /health/live and /health/ready "
            "(METRICS_TOKEN as the API's /metrics); 0 = off (compose sets 9101)."
        ),
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the worker's metrics and health port listens on.",
    )
    sync_agent_concurrency: int = Field(
        default=8,
        ge=1,
        le=32,
        description=(
            "Per-VM Proxmox requests a sync keeps in flight at most (identity config reads, "
            "guest-agent IP lookups, status checks); PVE's API daemons are shared, keep it "
            "modest."
        ),
    )
    event_lead_time: int = Field(
        default=0, ge=0, description="Seconds before starts_at an event is deployed."
    )
    event_transition_period: int = Field(
        default=3600, ge=0, description="Seconds after ends_at an event is archived."
    )

    @field_validator("clone_caps_redis_url")
    @classmethod
    def _caps_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        return redis_url(value)


class ApiSettings(BaseSettings):
    """The HTTP API process (`API_*`, `METRICS_TOKEN`)."""

    model_config = SettingsConfigDict(env_prefix="API_", env_file=".env", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description=(
            "Largest request body the API accepts, in bytes (default 1 MiB); a larger one "
            "is refused with 413 before it is read (Content-Length and streamed bytes)."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        validation_alias="METRICS_TOKEN",
        description="Bearer token /metrics requires; unset = /metrics open.",
    )


class LogSettings(BaseSettings):
    """Logging (`LOG_LEVEL`, `LOG_FORMAT`)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", env_file=".env", extra="ignore")

    level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    format: str = Field(default="text", description="text (human) or json (one object a line).")

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value.lower() not in {"text", "json"}:
            raise ValueError("must be text or json")
        return value.lower()


class GeneralSettings(BaseSettings):
    """Names that belong to no group (`PROJECT_NAME`)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    project_name: str = Field(
        default="OpenVLE", description="Shown as SMBIOS manufacturer and in the API title."
    )
