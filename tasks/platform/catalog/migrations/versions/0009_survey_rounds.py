"""Survey rounds: the round a door declared when it landed an ingestion (empty: taken from the rows' dates).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingestions") as table:
        table.add_column(sa.Column("survey_round", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingestions") as table:
        table.drop_column("survey_round")
