"""Initial schema: nodes, templates, events, vms, IPAM, vmids, operations, changelog,
tokens and the SQL snapshot.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 11:22:43.052588+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvle_core.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("created_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", openvle_core.db.types.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", openvle_core.db.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", openvle_core.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "changelog",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("time", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("changelog", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_changelog_entity_entity_id_id"),
            ["entity", "entity_id", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_changelog_time"), ["time"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("slug", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("ends_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug", name=op.f("uq_events_slug")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_status_ends_at"), ["status", "ends_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_events_status_starts_at"), ["status", "starts_at"], unique=False
        )

    op.create_table(
        "nodes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("maxcpu", sa.Integer(), nullable=False),
        sa.Column("mem", sa.BigInteger(), nullable=False),
        sa.Column("maxmem", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lock_key", sa.String(length=96), nullable=True),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("upids", openvle_core.db.types.JSONText(), nullable=False),
        sa.Column("params", openvle_core.db.types.JSONText(), nullable=False),
        sa.Column("result", openvle_core.db.types.JSONText(), nullable=True),
        sa.Column("created_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("started_at", openvle_core.db.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", openvle_core.db.types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["operations.id"],
            name=op.f("fk_operations_parent_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lock_key", name=op.f("uq_operations_lock_key")),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_operations_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_operations_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_operations_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_operations_target_type_target_id"),
            ["target_type", "target_id"],
            unique=False,
        )

    op.create_table(
        "snapshot_meta",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("synced_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("token", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "snapshot_resources",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("pool", sa.String(length=64), nullable=True),
        sa.Column("data", openvle_core.db.types.JSONText(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("snapshot_resources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_snapshot_resources_node"), ["node"], unique=False)
        batch_op.create_index(batch_op.f("ix_snapshot_resources_pool"), ["pool"], unique=False)
        batch_op.create_index(batch_op.f("ix_snapshot_resources_type"), ["type"], unique=False)

    op.create_table(
        "templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vmid", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("cores", sa.Integer(), nullable=True),
        sa.Column("memory_mb", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vmid", name=op.f("uq_templates_vmid")),
    )
    op.create_table(
        "vmid_reservations",
        sa.Column("vmid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("vm_id", sa.String(length=36), nullable=True),
        sa.Column("operation_id", sa.String(length=36), nullable=True),
        sa.Column("reserved_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("vmid"),
    )
    with op.batch_alter_table("vmid_reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vmid_reservations_vm_id"), ["vm_id"], unique=False)

    op.create_table(
        "event_templates",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_templates_event_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name=op.f("fk_event_templates_template_id")
        ),
        sa.PrimaryKeyConstraint("event_id", "template_id"),
    )
    with op.batch_alter_table("event_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_templates_template_id"), ["template_id"], unique=False
        )

    op.create_table(
        "vms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vmid", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("template_id", sa.String(length=36), nullable=True),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("participant", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ipv4", sa.String(length=15), nullable=True),
        sa.Column("full_clone", sa.Boolean(), nullable=False),
        sa.Column("ha_managed", sa.Boolean(), nullable=False),
        sa.Column("created_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_vms_event_id")),
        sa.ForeignKeyConstraint(["template_id"], ["templates.id"], name=op.f("fk_vms_template_id")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vmid", name=op.f("uq_vms_vmid")),
    )
    with op.batch_alter_table("vms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vms_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_vms_node"), ["node"], unique=False)
        batch_op.create_index(batch_op.f("ix_vms_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_vms_template_id"), ["template_id"], unique=False)

    op.create_table(
        "ip_allocations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("network", sa.String(length=43), nullable=False),
        sa.Column("address", sa.String(length=15), nullable=False),
        sa.Column("vm_id", sa.String(length=36), nullable=True),
        sa.Column("allocated_at", openvle_core.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vms.id"], name=op.f("fk_ip_allocations_vm_id"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network", "address", name=op.f("uq_ip_allocations_network_address")),
    )
    with op.batch_alter_table("ip_allocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ip_allocations_vm_id"), ["vm_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MariaDB when a
    # foreign key needs them. Children before parents.
    for table in (
        "ip_allocations",
        "vms",
        "event_templates",
        "vmid_reservations",
        "templates",
        "snapshot_resources",
        "snapshot_meta",
        "operations",
        "nodes",
        "events",
        "changelog",
        "api_tokens",
    ):
        op.drop_table(table)
