"""SQLAlchemy 2 models: OpenVLE's intent and its last view of the cluster.

One schema for MariaDB and SQLite: string UUIDs (UUIDv7, time-ordered), `UTCDateTime`
for every timestamp, JSON kept as text, and explicit constraint names so Alembic sees
the same thing on both backends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openvle_core.db.enums import (
    ChangeSource,
    EventStatus,
    GuestIdentity,
    OperationState,
    TemplateStatus,
    TokenScope,
    VmStatus,
)
from openvle_core.db.types import BigIntPK, JSONText, UTCDateTime, new_id, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with constraint naming shared by both backends."""

    metadata = MetaData(naming_convention=NAMING)


def _id() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


def _identity() -> Mapped[str]:
    unconfirmed = GuestIdentity.UNCONFIRMED.value
    return mapped_column(String(16), default=unconfirmed, server_default=unconfirmed)


class Node(Base):
    """A cluster node found by the sync."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    cpu: Mapped[float] = mapped_column(Float, default=0.0)
    maxcpu: Mapped[int] = mapped_column(Integer, default=0)
    mem: Mapped[int] = mapped_column(BigInteger, default=0)
    maxmem: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = _updated()


class Storage(Base):
    """A storage as one node sees it, found by the sync (a shared one appears per node)."""

    __tablename__ = "storages"

    storage: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    disk: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes in use
    maxdisk: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes in all
    updated_at: Mapped[datetime] = _updated()


class Template(Base):
    """A VM template in our pool."""

    __tablename__ = "templates"

    id: Mapped[str] = _id()
    vmid: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(128))
    node: Mapped[str | None] = mapped_column(String(64))
    cores: Mapped[int | None] = mapped_column(Integer)
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    # where its disks are and how big (what a full clone copies); read from its config
    storages: Mapped[str | None] = mapped_column(String(255))  # storage ids, comma-separated
    disk_mb: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=TemplateStatus.AVAILABLE.value)
    # What Proxmox said the guest was when the row was made (see guests/identity.py).
    identity: Mapped[str] = _identity()
    identity_vmgenid: Mapped[str | None] = mapped_column(String(64))
    identity_ctime: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Event(Base):
    """A course run, exam or workshop: participants x templates VMs between two times."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "status", "starts_at"),
        Index(None, "status", "ends_at"),
    )

    id: Mapped[str] = _id()
    slug: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    participants: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.SCHEDULED.value)
    # why the schedule did not deploy it (the plan's problems), until a deploy starts
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class EventTemplate(Base):
    """Which templates an event deploys, in order."""

    __tablename__ = "event_templates"

    event_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    template_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("templates.id"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class Vm(Base):
    """A VM OpenVLE made (or adopted): its UUID is its identity, vmid its PVE handle.

    The `identity_*` columns are the evidence that the guest at `vmid` is this VM,
    recorded right after the clone: the SMBIOS serial we wrote, Proxmox's `vmgenid` and
    the `meta` ctime (see guests/identity.py); `identity` is the verdict of the last check.
    """

    __tablename__ = "vms"

    id: Mapped[str] = _id()
    vmid: Mapped[int | None] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(128))
    node: Mapped[str | None] = mapped_column(String(64), index=True)
    template_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("templates.id"), index=True
    )
    event_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("events.id"), index=True)
    participant: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=VmStatus.CLONING.value, index=True)
    ipv4: Mapped[str | None] = mapped_column(String(15))
    # another running VM reports the same IPv4 (a DHCP misconfiguration); set by the sync
    ipv4_duplicate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    full_clone: Mapped[bool] = mapped_column(Boolean, default=False)
    ha_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    identity: Mapped[str] = _identity()
    identity_serial: Mapped[str | None] = mapped_column(String(64))
    identity_vmgenid: Mapped[str | None] = mapped_column(String(64))
    identity_ctime: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class IpAllocation(Base):
    """An address given to a VM; the unique pair makes double allocation impossible."""

    __tablename__ = "ip_allocations"
    __table_args__ = (UniqueConstraint("network", "address"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    network: Mapped[str] = mapped_column(String(43))
    address: Mapped[str] = mapped_column(String(15))
    vm_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("vms.id", ondelete="SET NULL"), index=True
    )
    allocated_at: Mapped[datetime] = _created()


class VmidReservation(Base):
    """A vmid we are about to use: Proxmox's nextid does not reserve, this table does."""

    __tablename__ = "vmid_reservations"

    vmid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    vm_id: Mapped[str | None] = mapped_column(String(36), index=True)
    operation_id: Mapped[str | None] = mapped_column(String(36))
    reserved_at: Mapped[datetime] = _created()


class Operation(Base):
    """A unit of work; the row is the truth about work in flight.

    `lock_key` is `"<target_type>:<target_id>"` while the operation holds its target and
    NULL otherwise; its unique index is the DB-level "one in flight per VM" guard.
    """

    __tablename__ = "operations"
    __table_args__ = (Index(None, "target_type", "target_id"),)

    id: Mapped[str] = _id()
    kind: Mapped[str] = mapped_column(String(32), index=True)
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=OperationState.QUEUED.value, index=True)
    lock_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    parent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("operations.id", ondelete="CASCADE"), index=True
    )
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    upids: Mapped[list[str]] = mapped_column(JSONText(), default=list)
    params: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = _updated()


class ChangelogEntry(Base):
    """One changed field of one entity, with who changed it and when."""

    __tablename__ = "changelog"
    __table_args__ = (Index(None, "entity", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default=ChangeSource.SYNC.value)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, `prefix` lets people recognise it."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16), default=TokenScope.READ.value)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SnapshotResource(Base):
    """The cluster-resource snapshot, when it lives in SQL (no MONGODB_URL)."""

    __tablename__ = "snapshot_resources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16), index=True)
    node: Mapped[str | None] = mapped_column(String(64), index=True)
    pool: Mapped[str | None] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONText())


class SnapshotMeta(Base):
    """When the snapshot was written, and by which write (`token`) for cache checks."""

    __tablename__ = "snapshot_meta"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    token: Mapped[str] = mapped_column(String(36))
