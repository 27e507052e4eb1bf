"""Survey submissions from the API: instance ids, versions of edit chains, content hashes.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_submissions",
        sa.Column("instance_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column(
            "ingestion_id",
            sa.String(40),
            sa.ForeignKey("ingestions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("deprecated_id", sa.String(128)),
        sa.Column("submitted_by", sa.String(120)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    # one version number per chain: two concurrent edits of the same head cannot both win
    op.create_index(
        "uq_survey_submissions_chain_version", "survey_submissions", ["chain_id", "version"], unique=True
    )


def downgrade() -> None:
    op.drop_table("survey_submissions")
