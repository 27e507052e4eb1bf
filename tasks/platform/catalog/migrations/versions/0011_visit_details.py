"""Visits keep their source row (to open the sealed household id), predicted status and expected income.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.add_column(sa.Column("source_row", sa.Integer))
        batch.add_column(sa.Column("predicted_status", sa.String(20)))
        batch.add_column(sa.Column("expected_per_day", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.drop_column("expected_per_day")
        batch.drop_column("predicted_status")
        batch.drop_column("source_row")
