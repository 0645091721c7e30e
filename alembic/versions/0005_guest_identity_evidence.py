"""Guest identity evidence on VMs and templates: the SMBIOS serial we wrote, Proxmox's
vmgenid and meta ctime, and the verdict of the last check. Rows that exist already were
made before evidence was recorded: they become `legacy` (confirmed once by the old rule,
then their evidence is recorded).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _identity() -> sa.Column[str]:
    return sa.Column("identity", sa.String(length=16), nullable=False, server_default="unconfirmed")


def upgrade() -> None:
    with op.batch_alter_table("vms", schema=None) as batch_op:
        batch_op.add_column(_identity())
        batch_op.add_column(sa.Column("identity_serial", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("identity_vmgenid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("identity_ctime", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(_identity())
        batch_op.add_column(sa.Column("identity_vmgenid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("identity_ctime", sa.BigInteger(), nullable=True))
    op.execute("UPDATE vms SET identity = 'legacy' WHERE vmid IS NOT NULL")
    op.execute("UPDATE templates SET identity = 'legacy'")


def downgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("identity_ctime")
        batch_op.drop_column("identity_vmgenid")
        batch_op.drop_column("identity")
    with op.batch_alter_table("vms", schema=None) as batch_op:
        batch_op.drop_column("identity_ctime")
        batch_op.drop_column("identity_vmgenid")
        batch_op.drop_column("identity_serial")
        batch_op.drop_column("identity")
