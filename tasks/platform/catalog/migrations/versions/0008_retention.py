"""Retention: when an archived zone object or raw file was deleted for good (the record of it stays).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zone_objects") as table:
        table.add_column(sa.Column("purged_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("ingestions") as table:
        table.add_column(sa.Column("raw_purged_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("ingestions") as table:
        table.drop_column("raw_purged_at")
    with op.batch_alter_table("zone_objects") as table:
        table.drop_column("purged_at")
