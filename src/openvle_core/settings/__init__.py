"""Configuration: one pydantic-settings tree, built once at start-up and passed down.

Variable names follow the OpenVLE documentation (docs/reference/configuration.md).
Each group reads its own prefix (`PVE_`, `PVE_VMS_`, `DATABASE_`, `WORKER_`, ...);
`load_settings()` builds every group and turns all validation failures into one
`ConfigError` that names each bad variable, so start-up never shows a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from openvle_core.settings.cloudinit import CloudInitSettings, IPv4Range, parse_ip_ranges
from openvle_core.settings.errors import ConfigError
from openvle_core.settings.groups import (
    DEFAULT_DATABASE_URL,
    ApiSettings,
    DatabaseSettings,
    GeneralSettings,
    LogSettings,
    MongoSettings,
    ProxmoxSettings,
    RedisSettings,
    VmDefaults,
    WorkerSettings,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ApiSettings",
    "CloudInitSettings",
    "ConfigError",
    "DatabaseSettings",
    "GeneralSettings",
    "IPv4Range",
    "LogSettings",
    "MongoSettings",
    "ProxmoxSettings",
    "RedisSettings",
    "Settings",
    "VmDefaults",
    "WorkerSettings",
    "describe_settings",
    "env_name",
    "load_settings",
    "parse_ip_ranges",
]


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
