"""Villages assigned to field officers (district, cluster, village), the scope of their follow-up worklist.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "officer_villages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_name", sa.String(120), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("district", sa.String(60), nullable=False),
        sa.Column("cluster", sa.String(60), nullable=False),
        sa.Column("village", sa.String(80), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_name", "district", "cluster", "village", name="uq_officer_villages"),
    )


def downgrade() -> None:
    op.drop_table("officer_villages")
