"""Ingest path: ingestions, rule outcomes, quality metrics, lineage, row identities.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ingestions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("door", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("raw_key", sa.String(255), nullable=False),
        sa.Column("format", sa.String(20)),
        sa.Column("status", sa.String(30), nullable=False, index=True),
        sa.Column("submitted_by", sa.String(120)),
        sa.Column("received_at", TS, nullable=False, index=True),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("flow_run_id", sa.String(40)),
        sa.Column("rows_received", sa.Integer),
        sa.Column("rows_accepted", sa.Integer),
        sa.Column("rows_quarantined", sa.Integer),
        sa.Column("rows_duplicate", sa.Integer),
        sa.Column("report", sa.JSON),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "rule_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "ingestion_id",
            sa.String(40),
            sa.ForeignKey("ingestions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("rule", sa.String(120), nullable=False),
        sa.Column("expectation", sa.String(120), nullable=False),
        sa.Column("column", sa.String(255)),
        sa.Column("unexpected_count", sa.Integer, nullable=False),
        sa.Column("element_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "quality_metrics",
        sa.Column(
            "ingestion_id",
            sa.String(40),
            sa.ForeignKey("ingestions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "zone_objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "ingestion_id",
            sa.String(40),
            sa.ForeignKey("ingestions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("zone", sa.String(20), nullable=False),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("rows", sa.Integer),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("archived_at", TS),
    )
    op.create_table(
        "row_identities",
        sa.Column("identity", sa.String(32), primary_key=True),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column(
            "ingestion_id", sa.String(40), sa.ForeignKey("ingestions.id", ondelete="CASCADE"), nullable=False
        ),
    )
    op.create_index("ix_row_identities_ingestion", "row_identities", ["ingestion_id"])


def downgrade() -> None:
    for table in ("row_identities", "zone_objects", "quality_metrics", "rule_outcomes", "ingestions"):
        op.drop_table(table)
