"""Capacity figures: storages as the sync sees them, template disks, why an event waits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 21:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openvle_core.db.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storages",
        sa.Column("storage", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disk", sa.BigInteger(), nullable=False),
        sa.Column("maxdisk", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("storage", "node"),
    )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storages", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("disk_mb", sa.Integer(), nullable=True))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("status_reason")
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("disk_mb")
        batch_op.drop_column("storages")
    op.drop_table("storages")
