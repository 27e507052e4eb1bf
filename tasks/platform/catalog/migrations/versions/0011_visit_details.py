"""Visits keep their source row (to open the sealed household id), predicted status and expected income;
the columns that point at another visit are indexed, so deleting visits never scans the table per row.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

REFERENCES = ("superseded_by", "linked_visit_id", "replaces_visit_id")


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.add_column(sa.Column("source_row", sa.Integer))
        batch.add_column(sa.Column("predicted_status", sa.String(20)))
        batch.add_column(sa.Column("expected_per_day", sa.Float))
    for column in REFERENCES:
        op.create_index(
            f"ix_visits_{column}",
            "visits",
            [column],
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )


def downgrade() -> None:
    for column in REFERENCES:
        op.drop_index(f"ix_visits_{column}", "visits")
    with op.batch_alter_table("visits") as batch:
        batch.drop_column("expected_per_day")
        batch.drop_column("predicted_status")
        batch.drop_column("source_row")
