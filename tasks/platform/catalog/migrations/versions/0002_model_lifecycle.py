"""Model lifecycle: every retrain decision with its trigger, reason and outcome.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("triggers", sa.JSON, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("new_labelled_rows", sa.Integer),
        sa.Column("accuracy_on_new", sa.Float),
        sa.Column("model_name", sa.String(120)),
        sa.Column("model_version", sa.String(20)),
        sa.Column("alias", sa.String(20)),
        sa.Column("metrics", sa.JSON),
        sa.Column("flow_run_id", sa.String(40)),
    )


def downgrade() -> None:
    op.drop_table("model_decisions")
