"""Typed views of the Proxmox responses the client returns (fields from the 9.1/8.4 schema).

PVE sends booleans as 0/1 and omits unset keys, so most fields are optional; unknown keys
are ignored except on `VmConfig`, whose keys are open-ended (`model_extra`).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from openvle_core.proxmox.errors import ProxmoxBadResponse

_MAC_RE = re.compile(r"(?:^|,)(?:[A-Za-z0-9]+=)?([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})(?:,|$)")


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """Validate a response into `model`; a mismatch is `ProxmoxBadResponse`, not pydantic's."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise ProxmoxBadResponse(
            f"unexpected {model.__name__} from Proxmox: {where}: {first['msg']}"
        ) from exc


def parse_list(model: type[M], data: Any) -> list[M]:
    """Validate a list response item by item (see `parse`)."""
    if not isinstance(data, list):
        raise ProxmoxBadResponse(f"expected a list of {model.__name__}, got {type(data).__name__}")
    return [parse(model, item) for item in data]


class PveModel(BaseModel):
    """Base: immutable, unknown keys ignored, fields populated by alias or by name."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class VersionInfo(PveModel):
    """GET /version."""

    version: str
    release: str
    repoid: str | None = None
    console: str | None = None

    @property
    def major_minor(self) -> tuple[int, int]:
        """`release` ("9.1") as a comparable tuple."""
        major, _, minor = self.release.partition(".")
        return int(major), int(minor or 0)


class ClusterResource(PveModel):
    """One item of GET /cluster/resources (a VM, node, storage, pool or SDN entry)."""

    id: str
    type: str
    node: str | None = None
    vmid: int | None = None
    name: str | None = None
    status: str | None = None
    template: bool = False
    pool: str | None = None
    lock: str | None = None
    tags: str | None = None
    hastate: str | None = None
    cpu: float | None = None
    maxcpu: float | None = None
    mem: int | None = None
    maxmem: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    uptime: int | None = None
    storage: str | None = None
    shared: bool | None = None
    plugintype: str | None = None
    content: str | None = None


class NodeInfo(PveModel):
    """One item of GET /nodes."""

    node: str
    status: Literal["unknown", "online", "offline"]
    cpu: float | None = None
    maxcpu: int | None = None
    mem: int | None = None
    maxmem: int | None = None
    uptime: int | None = None
    level: str | None = None
    ssl_fingerprint: str | None = None


class MemoryUsage(PveModel):
    """`memory` of GET /nodes/{node}/status, bytes."""

    total: int
    used: int
    free: int
    available: int | None = None


class CpuInfo(PveModel):
    """`cpuinfo` of GET /nodes/{node}/status."""

    cores: int | None = None
    cpus: int | None = None
    model: str | None = None
    sockets: int | None = None


class NodeStatus(PveModel):
    """GET /nodes/{node}/status (the parts we use)."""

    cpu: float
    loadavg: list[str] = Field(default_factory=list)
    memory: MemoryUsage
    cpuinfo: CpuInfo | None = None
    uptime: int | None = None
    pveversion: str | None = None


class VmConfig(PveModel):
    """GET /nodes/{node}/qemu/{vmid}/config: named keys typed, the rest in `model_extra`."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    digest: str
    name: str | None = None
    description: str | None = None
    template: bool = False
    lock: str | None = None
    tags: str | None = None
    agent: str | None = None
    net0: str | None = None
    memory: str | None = None
    cores: int | None = None
    sockets: int | None = None
    smbios1: str | None = None

    def option(self, key: str) -> str | None:
        """Any config key (`ipconfig0`, `scsi0`, ...) as PVE's string, or None if unset."""
        value = getattr(self, key, None) if key in type(self).model_fields else None
        if value is None and self.model_extra:
            value = self.model_extra.get(key)
        return None if value is None else str(value)

    @property
    def agent_enabled(self) -> bool:
        """`agent: 1` or `agent: enabled=1,...` (absent or 0 means no agent)."""
        if not self.agent:
            return False
        first = self.agent.split(",", 1)[0]
        return first.removeprefix("enabled=") in {"1", "on", "yes", "true"}

    @property
    def net0_mac(self) -> str | None:
        """The MAC address of net0 (`virtio=BC:24:11:..,bridge=vmbr0`), upper-case."""
        match = _MAC_RE.search(self.net0 or "")
        return match[1].upper() if match else None


class HaState(PveModel):
    """`ha` of status/current: `{"managed": 0}` or `{"managed": 1, "state": "started"}`."""

    managed: bool = False
    state: str | None = None


class VmStatus(PveModel):
    """GET /nodes/{node}/qemu/{vmid}/status/current (live, unlike cluster resources)."""

    vmid: int
    status: Literal["running", "stopped"]
    qmpstatus: str | None = None
    name: str | None = None
    lock: str | None = None
    tags: str | None = None
    template: bool = False
    agent: bool = False
    ha: HaState = Field(default_factory=HaState)
    uptime: int | None = None
    cpu: float | None = None
    cpus: float | None = None
    mem: int | None = None
    maxmem: int | None = None


class TaskStatus(PveModel):
    """GET /nodes/{node}/tasks/{upid}/status; `exitstatus` only once stopped."""

    upid: str
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str
    tokenid: str | None = None
    status: Literal["running", "stopped"]
    exitstatus: str | None = None

    @property
    def succeeded(self) -> bool:
        """Stopped with `OK` or `WARNINGS: n` (a warning is not a failure)."""
        return self.status == "stopped" and (
            self.exitstatus == "OK" or (self.exitstatus or "").startswith("WARNINGS")
        )


class TaskSummary(PveModel):
    """One item of GET /nodes/{node}/tasks (`endtime`/`status` only once finished).

    A token's task carries `user` (the token's user) and `tokenid` (the part after `!`).
    """

    upid: str
    node: str
    starttime: int
    type: str
    id: str
    user: str
    tokenid: str | None = None
    endtime: int | None = None
    status: str | None = None


class TaskLogLine(PveModel):
    """One line of GET .../tasks/{upid}/log (`n` is 1-based)."""

    n: int
    t: str


class AgentIpAddress(PveModel):
    """One address of a guest-agent interface."""

    ip_address: str = Field(alias="ip-address")
    ip_address_type: Literal["ipv4", "ipv6"] = Field(alias="ip-address-type")
    prefix: int | None = None


class AgentInterface(PveModel):
    """One item of the agent's `network-get-interfaces` result."""

    name: str
    hardware_address: str | None = Field(default=None, alias="hardware-address")
    ip_addresses: list[AgentIpAddress] = Field(default_factory=list, alias="ip-addresses")


class AgentInterfaces(PveModel):
    """GET .../agent/network-get-interfaces: `{"result": [...]}`."""

    result: list[AgentInterface]


class PoolMember(PveModel):
    """A pool member: a guest (same fields as cluster resources) or a storage."""

    id: str
    type: str
    node: str | None = None
    vmid: int | None = None
    name: str | None = None
    status: str | None = None
    template: bool = False
    storage: str | None = None


class Pool(PveModel):
    """A pool with its members (GET /pools?poolid= on 8.1+, /pools/{id} before)."""

    poolid: str
    comment: str | None = None
    members: list[PoolMember] = Field(default_factory=list)


class HaResource(PveModel):
    """One item of GET /cluster/ha/resources (only keys that are set)."""

    sid: str
    type: str | None = None
    state: str | None = None
    group: str | None = None
    max_restart: int | None = None
    max_relocate: int | None = None
    failback: bool | None = None
    comment: str | None = None
    digest: str | None = None

    @property
    def vmid(self) -> int | None:
        """The vmid of a `vm:100` resource."""
        kind, _, ident = self.sid.rpartition(":")
        return int(ident) if kind in {"vm", ""} and ident.isdigit() else None


class Permissions(RootModel[dict[str, dict[str, bool]]]):
    """GET /access/permissions: path -> privilege -> propagate flag."""


class LocalDisk(PveModel):
    """A local disk reported by the migrate precondition check."""

    volid: str
    cdrom: bool = False
    is_unused: bool = False
    size: int | None = None


class MigratePreconditions(PveModel):
    """GET /nodes/{node}/qemu/{vmid}/migrate?target=."""

    running: bool = False
    allowed_nodes: list[str] = Field(default_factory=list)
    not_allowed_nodes: dict[str, Any] = Field(default_factory=dict)
    local_disks: list[LocalDisk] = Field(default_factory=list)
    local_resources: list[str] = Field(default_factory=list)


class Ipv4Lookup(PveModel):
    """What `get_ipv4` found: an address, or None with the reason why not."""

    address: IPv4Address | None = None
    interface: str | None = None
    reason: str | None = None


class MissingPrivilege(PveModel):
    """A requirement not met: any one of `privileges` is needed on `path`."""

    path: str
    privileges: tuple[str, ...]


class ExcessPrivilege(PveModel):
    """Privileges the token holds on `path`, outside its pool, that OpenVLE never needs."""

    path: str
    privileges: tuple[str, ...]


class PrivilegeReport(PveModel):
    """`check_privileges()`: per feature, what the token lacks for this PVE version, and
    what it holds outside its pool beyond what OpenVLE needs there (`excess`)."""

    release: str
    pool: str
    missing: dict[str, list[MissingPrivilege]]
    excess: list[ExcessPrivilege] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing for any feature."""
        return not any(self.missing.values())
