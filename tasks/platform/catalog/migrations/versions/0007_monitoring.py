"""Monitoring: drift results per ingestion or week, alert grouping windows, and the log of alert mails.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "ingestion_id", sa.String(40), sa.ForeignKey("ingestions.id", ondelete="CASCADE"), index=True
        ),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("reference_version", sa.String(20)),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("drift", sa.Boolean, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
    )
    op.create_table(
        "alert_groups",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("window_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grouped", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
    )
    op.create_table(
        "alerts_sent",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("detail", sa.JSON),
    )


def downgrade() -> None:
    op.drop_table("alerts_sent")
    op.drop_table("alert_groups")
    op.drop_table("drift_results")
