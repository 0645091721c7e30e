"""Configuration: one pydantic-settings tree, built once at start-up and passed down.

Variable names follow the OpenVLE documentation (see ../shared/docs/ARCHITECTURE.md).
This module currently holds the Proxmox part; the data-layer work extends it with the
VM defaults, cloud-init, database, MongoDB, Redis, worker and API groups.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @field_validator("hostname")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. pve1.example.org:8006")
        return value

    @property
    def token_id(self) -> str:
        """The full token id, `USER@REALM!TOKENID`."""
        return f"{self.user}!{self.token_name}"

    @property
    def base_url(self) -> str:
        """The API root, `https://HOST:PORT/api2/json`."""
        return f"https://{self.hostname}/api2/json"
