"""Cloud-init and the VM network: `PVE_CI_ENABLED`, `PVE_VMS_NETWORK`, `PVE_VMS_CI*`."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPv4Range = tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]


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

    @property
    def reserved_addresses(self) -> frozenset[ipaddress.IPv4Address]:
        """Addresses of the network a VM must never get, whatever PVE_VMS_EXCLUDED_IPS says:
        the network and broadcast addresses, the gateway and the DNS servers."""
        net = self.ip_network
        reserved = {net.network_address, net.broadcast_address} if net is not None else set()
        reserved |= {self.gateway} if self.gateway is not None else set()
        servers = (ipaddress.ip_address(s) for s in self.dns_servers)
        reserved |= {s for s in servers if isinstance(s, ipaddress.IPv4Address)}
        return frozenset(reserved)


def _network_of(data: dict[str, Any]) -> ipaddress.IPv4Network | None:
    if data.get("network") is None or data.get("subnet") is None:
        return None
    return ipaddress.IPv4Network(f"{data['network']}/{data['subnet']}")
