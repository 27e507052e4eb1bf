"""Households over time: a visit per household and round, and one registry row per household.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("household", sa.String(32), nullable=False),
        sa.Column("survey_round", sa.String(40), nullable=False),
        sa.Column(
            "ingestion_id",
            sa.String(40),
            sa.ForeignKey("ingestions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row_identity", sa.String(32), nullable=False, unique=True),
        sa.Column("collected_at", TS, nullable=False),
        sa.Column("district", sa.String(60), nullable=False),
        sa.Column("cluster", sa.String(60), nullable=False),
        sa.Column("village", sa.String(80), nullable=False),
        sa.Column("observed_status", sa.String(20)),
        sa.Column("p_vulnerable", sa.Float),
        sa.Column("risk_band", sa.String(10)),
        sa.Column("model_version", sa.String(20)),
        sa.Column("household_size", sa.Integer),
        sa.Column("agriculture_land", sa.Float),
        sa.Column("vsla_profits_usd", sa.Float),
        sa.Column("income_consumption_residues_per_day", sa.Float),
        sa.Column("superseded_by", sa.Integer, sa.ForeignKey("visits.id", ondelete="SET NULL")),
        sa.Column("superseded_at", TS),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("linked_visit_id", sa.Integer, sa.ForeignKey("visits.id", ondelete="SET NULL")),
        sa.Column("replaces_visit_id", sa.Integer, sa.ForeignKey("visits.id", ondelete="SET NULL")),
    )
    op.create_index("ix_visits_household_round", "visits", ["household", "survey_round"])
    op.create_index("ix_visits_round_village", "visits", ["survey_round", "district", "cluster", "village"])
    op.create_index("ix_visits_ingestion", "visits", ["ingestion_id"])
    op.create_index("ix_visits_round_start", "visits", ["survey_round", "state", "collected_at"])
    op.create_table(
        "household_registry",
        sa.Column("household", sa.String(32), primary_key=True),
        sa.Column("first_round", sa.String(40), nullable=False),
        sa.Column("last_round", sa.String(40), nullable=False),
        sa.Column("first_collected_at", TS, nullable=False),
        sa.Column("last_collected_at", TS, nullable=False),
        sa.Column("visits", sa.Integer, nullable=False),
        sa.Column("last_visit_id", sa.Integer, nullable=False),
        sa.Column("district", sa.String(60), nullable=False),
        sa.Column("cluster", sa.String(60), nullable=False),
        sa.Column("village", sa.String(80), nullable=False),
        sa.Column("first_district", sa.String(60), nullable=False),
        sa.Column("first_cluster", sa.String(60), nullable=False),
        sa.Column("first_village", sa.String(80), nullable=False),
        sa.Column("observed_status", sa.String(20)),
        sa.Column("risk_band", sa.String(10)),
        sa.Column("model_version", sa.String(20)),
        sa.Column("p_vulnerable", sa.Float),
    )
    op.create_index("ix_household_registry_village", "household_registry", ["district", "cluster", "village"])


def downgrade() -> None:
    op.drop_table("household_registry")
    op.drop_table("visits")
