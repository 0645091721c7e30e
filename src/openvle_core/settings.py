"""Configuration: one pydantic-settings tree, built once at start-up and passed down.

Variable names follow the OpenVLE documentation (see ../shared/docs/ARCHITECTURE.md).
Each group reads its own prefix (`PVE_`, `PVE_VMS_`, `DATABASE_`, `WORKER_`, ...);
`load_settings()` builds every group and turns all validation failures into one
`ConfigError` that names each bad variable, so start-up never shows a traceback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from openvle_core.errors import OpenVLEError

IPv4Range = tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]

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
    """The job queue (`REDIS_URL`); unset = jobs run in-process."""

    model_config = SettingsConfigDict(env_prefix="REDIS_", env_file=".env", extra="ignore")

    url: SecretStr | None = Field(default=None, description="redis:// URL; unset = in-process.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr | None) -> SecretStr | None:
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
    event_parallel_vms: int = Field(
        default=32, ge=1, description="VMs one event deploy or archive works on at once."
    )
    agent_ip_timeout: float = Field(
        default=120.0, gt=0, description="Seconds to wait for a VM's IPv4 via the guest agent."
    )
    shutdown_timeout: float = Field(
        default=120.0, gt=0, description="Seconds a graceful shutdown may take."
    )
    sync_agent_concurrency: int = Field(
        default=8, ge=1, description="Parallel guest-agent IP lookups during a sync."
    )
    event_lead_time: int = Field(
        default=0, ge=0, description="Seconds before starts_at an event is deployed."
    )
    event_transition_period: int = Field(
        default=3600, ge=0, description="Seconds after ends_at an event is archived."
    )


class ApiSettings(BaseSettings):
    """The HTTP API process (`API_*`, `METRICS_TOKEN`)."""

    model_config = SettingsConfigDict(env_prefix="API_", env_file=".env", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
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


def _parse_ip(value: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise ValueError(f"{value.strip()!r} is not an IPv4 address") from None


def parse_ip_ranges(value: str) -> list[IPv4Range]:
    """Parse `10.0.0.1-10.0.0.20, 10.0.0.50` into inclusive (first, last) pairs."""
    ranges: list[IPv4Range] = []
    for item in value.replace(";", ",").split(","):
        if not item.strip():
            continue
        first, _, last = item.partition("-")
        start = _parse_ip(first)
        end = _parse_ip(last) if last.strip() else start
        if end < start:
            raise ValueError(f"range {item.strip()!r} ends before it starts")
        ranges.append((start, end))
    return ranges


class CloudInitSettings(BaseSettings):
    """Cloud-init and the VM network (`PVE_CI_ENABLED`, `PVE_VMS_NETWORK`, `PVE_VMS_CI*`).

    Network, subnet and gateway are required only when cloud-init is enabled; whatever is
    given is checked: the subnet (prefix length or netmask) and network must form a
    network, the gateway and every excluded address must lie inside it.
    """

    model_config = SettingsConfigDict(env_prefix="PVE_VMS_", env_file=".env", extra="ignore")

    enabled: bool = Field(
        default=False,
        validation_alias="PVE_CI_ENABLED",
        description="Give VMs a static IP through cloud-init (else read it via the agent).",
    )
    network: ipaddress.IPv4Address | None = Field(
        default=None, description="Network address of the VM network, e.g. 10.20.0.0."
    )
    subnet: str | None = Field(
        default=None, description="Prefix length (24) or netmask (255.255.255.0)."
    )
    gateway: ipaddress.IPv4Address | None = Field(
        default=None, description="Default gateway, inside the network."
    )
    dns: str | None = Field(default=None, description="DNS servers, space or comma separated.")
    excluded_ips: str = Field(
        default="",
        description="Addresses and ranges never given out: 10.0.0.1-10.0.0.20, 10.0.0.50.",
    )
    ciuser: str | None = Field(default=None, description="cloud-init user name.")
    cipassword: SecretStr | None = Field(default=None, description="cloud-init user password.")
    ciupgrade: bool = Field(
        default=True, description="cloud-init package upgrade after first boot (PVE default)."
    )

    @field_validator("subnet")
    @classmethod
    def _forms_network(cls, value: str | None, info: ValidationInfo) -> str | None:
        network = info.data.get("network")
        if value is None or network is None:
            return value
        try:
            ipaddress.IPv4Network(f"{network}/{value.strip().lstrip('/')}")
        except ValueError as exc:
            raise ValueError(
                f"with PVE_VMS_NETWORK={network} does not form a network: {exc}"
            ) from None
        return value.strip().lstrip("/")

    @field_validator("gateway")
    @classmethod
    def _gateway_inside(
        cls, value: ipaddress.IPv4Address | None, info: ValidationInfo
    ) -> ipaddress.IPv4Address | None:
        net = _network_of(info.data)
        hosts_only = net is None or value not in (net.network_address, net.broadcast_address)
        if value is not None and net is not None and (value not in net or not hosts_only):
            raise ValueError(f"{value} is not a host address of {net}")
        return value

    @field_validator("dns")
    @classmethod
    def _dns(cls, value: str | None) -> str | None:
        if value is not None:
            for server in value.replace(",", " ").split():
                ipaddress.ip_address(server)
        return value

    @field_validator("excluded_ips")
    @classmethod
    def _excluded_inside(cls, value: str, info: ValidationInfo) -> str:
        net = _network_of(info.data)
        for first, last in parse_ip_ranges(value):
            if net is not None and (first not in net or last not in net):
                raise ValueError(f"{first}-{last} is not inside {net}")
        return value

    @model_validator(mode="after")
    def _required_when_enabled(self) -> CloudInitSettings:
        if self.enabled:
            names = {"network": self.network, "subnet": self.subnet, "gateway": self.gateway}
            missing = [f"PVE_VMS_{k.upper()}" for k, v in names.items() if v is None]
            if missing:
                raise ValueError(f"{', '.join(missing)} must be set when PVE_CI_ENABLED is true")
        return self

    @property
    def ip_network(self) -> ipaddress.IPv4Network | None:
        """The VM network as an object, or None when not configured."""
        return _network_of({"network": self.network, "subnet": self.subnet})

    @property
    def excluded_ranges(self) -> list[IPv4Range]:
        """`PVE_VMS_EXCLUDED_IPS` as inclusive (first, last) pairs."""
        return parse_ip_ranges(self.excluded_ips)

    @property
    def dns_servers(self) -> list[str]:
        """`PVE_VMS_DNS` as a list of addresses."""
        return (self.dns or "").replace(",", " ").split()


def _network_of(data: dict[str, Any]) -> ipaddress.IPv4Network | None:
    if data.get("network") is None or data.get("subnet") is None:
        return None
    return ipaddress.IPv4Network(f"{data['network']}/{data['subnet']}")


class Settings(BaseModel):
    """The whole configuration, one group per concern; build it with `load_settings()`."""

    model_config = ConfigDict(frozen=True)

    proxmox: ProxmoxSettings
    vms: VmDefaults
    cloudinit: CloudInitSettings
    database: DatabaseSettings
    mongodb: MongoSettings
    redis: RedisSettings
    worker: WorkerSettings
    api: ApiSettings
    log: LogSettings
    general: GeneralSettings

    @property
    def project_name(self) -> str:
        """`PROJECT_NAME`."""
        return self.general.project_name


_GROUPS: dict[str, type[BaseSettings]] = {
    name: field.annotation  # type: ignore[misc]  # every Settings field is a settings class
    for name, field in Settings.model_fields.items()
}


class ConfigError(OpenVLEError):
    """The configuration is invalid; `problems` pairs each variable with the reason."""

    code = "config_invalid"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {name}: {why}" for name, why in problems)
        super().__init__(f"invalid configuration ({len(problems)} problems):\n{lines}")
        self.problems = problems


def load_settings(env_file: str | Path | None = ".env", **overrides: Mapping[str, Any]) -> Settings:
    """Read every group from the environment (and `env_file`); raise one ConfigError.

    `overrides` give values per group by field name (`proxmox={"hostname": ...}`), ahead
    of the environment: the demo, tests and benchmarks point it at the simulator so.
    """
    unknown = sorted(set(overrides) - set(_GROUPS))
    if unknown:
        raise TypeError(f"no settings groups named {unknown}")
    built: dict[str, BaseSettings] = {}
    problems: list[tuple[str, str]] = []
    for name, group in _GROUPS.items():
        try:
            built[name] = group(_env_file=env_file, **overrides.get(name, {}))
        except ValidationError as exc:
            problems.extend(_describe(group, exc))
        except SettingsError as exc:  # a value that is not even parseable (bad JSON list)
            problems.append(_describe_unparsable(group, exc))
    if problems:
        raise ConfigError(problems)
    return Settings.model_validate(built)


def _describe(group: type[BaseSettings], exc: ValidationError) -> list[tuple[str, str]]:
    """Name each failed field by its environment variable; never echo the input."""
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_input=False, include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:
            out.append(
                ("PVE_CI_ENABLED" if group is CloudInitSettings else group.__name__, message)
            )
            continue
        field = str(err["loc"][0])
        name = env_name(group, field) if field in group.model_fields else field.upper()
        out.append((name, message))
    return out


def _describe_unparsable(group: type[BaseSettings], exc: SettingsError) -> tuple[str, str]:
    """Name the field pydantic-settings could not even decode (it says `field "x"`)."""
    text = str(exc)
    field = text.split('field "', 1)[1].split('"', 1)[0] if 'field "' in text else ""
    name = env_name(group, field) if field in group.model_fields else group.__name__
    return name, 'cannot be parsed: give a JSON list, e.g. ["10.0.0.0/8"]'


def env_name(group: type[BaseSettings], field: str) -> str:
    """The environment variable that sets `field` of `group`."""
    info = group.model_fields[field]
    alias = info.validation_alias
    prefix = str(group.model_config.get("env_prefix", ""))
    return (alias if isinstance(alias, str) else prefix + field).upper()


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting: for docs and `openvle doctor`."""
    rows: list[tuple[str, str, str]] = []
    for group in _GROUPS.values():
        for field, info in group.model_fields.items():
            default = info.get_default(call_default_factory=True)
            shown = "(unset)" if default is None or default == SecretStr("") else str(default)
            if isinstance(default, SecretStr) and default.get_secret_value():
                shown = default.get_secret_value()
            elif isinstance(default, list | tuple):
                shown = ", ".join(map(str, default)) or "(empty)"
            rows.append((env_name(group, field), shown, info.description or ""))
    return rows
