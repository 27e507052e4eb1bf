"""Quarantine review: who approved or rejected which held row, when and why.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column(
            "ingestion_id",
            sa.String(40),
            sa.ForeignKey("ingestions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("source_row", sa.Integer, primary_key=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(120), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_key", sa.String(255)),
    )


def downgrade() -> None:
    op.drop_table("reviews")
