"""Catalog tables of households over time: every visit of a household in a round, and one registry row each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tasks.platform.catalog.models import Base

REFERENCES = ("superseded_by", "linked_visit_id", "replaces_visit_id")  # visits.id of another visit
VISIT_STATES = ("pending", "final")  # pending until its ingestion completes; only final visits are counted


class Visit(Base):
    """One accepted survey of one household in one round, with what progress needs to outlive the zones."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household: Mapped[str] = mapped_column(String(32))  # the keyed pseudonym of the normalised HouseHoldID
    survey_round: Mapped[str] = mapped_column(String(40))
    ingestion_id: Mapped[str] = mapped_column(ForeignKey("ingestions.id", ondelete="CASCADE"))
    row_identity: Mapped[str] = mapped_column(String(32), unique=True)
    collected_at: Mapped[datetime]  # submitted_at, else the landing time of its ingestion
    district: Mapped[str] = mapped_column(String(60))
    cluster: Mapped[str] = mapped_column(String(60))
    village: Mapped[str] = mapped_column(String(80))
    observed_status: Mapped[str | None] = mapped_column(String(20))
    p_vulnerable: Mapped[float | None] = mapped_column(Float)
    risk_band: Mapped[str | None] = mapped_column(String(10))
    model_version: Mapped[str | None] = mapped_column(String(20))
    predicted_status: Mapped[str | None] = mapped_column(String(20))
    expected_per_day: Mapped[float | None] = mapped_column(Float)
    source_row: Mapped[int | None] = mapped_column(Integer)  # with ingestion_id: where the sealed id is
    household_size: Mapped[int | None] = mapped_column(Integer)
    agriculture_land: Mapped[float | None] = mapped_column(Float)
    vsla_profits_usd: Mapped[float | None] = mapped_column(Float)
    income_consumption_residues_per_day: Mapped[float | None] = mapped_column(Float)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))
    superseded_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(10))
    # the earlier visit of the same household and round that another ingestion held pending when this one
    # was recorded: both wait, and the first to be finalised stays
    linked_visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))
    # the visit an API edit (deprecated_id) replaces once this one is final
    replaces_visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("ix_visits_household_round", "household", "survey_round"),
        Index("ix_visits_round_village", "survey_round", "district", "cluster", "village"),
        Index("ix_visits_ingestion", "ingestion_id"),
        # the start of a round (its earliest final visit) is one index seek, not a scan of every visit
        Index("ix_visits_round_start", "survey_round", "state", "collected_at"),
        # Deleting a visit makes the foreign keys look for visits pointing at it; unindexed, a re-run deleting
        # 58k pending visits scanned the table per row and ran >17 min (1.3 s indexed). Partial: almost all
        # of these columns are null.
        *(
            Index(
                f"ix_visits_{column}",
                column,
                sqlite_where=text(f"{column} IS NOT NULL"),
                postgresql_where=text(f"{column} IS NOT NULL"),
            )
            for column in REFERENCES
        ),
    )


class HouseholdRegistry(Base):
    """One row per household: its first and latest final visit, how many, and where it was first and last seen."""

    __tablename__ = "household_registry"

    household: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_round: Mapped[str] = mapped_column(String(40))
    last_round: Mapped[str] = mapped_column(String(40))
    first_collected_at: Mapped[datetime]
    last_collected_at: Mapped[datetime]
    visits: Mapped[int] = mapped_column(Integer)
    last_visit_id: Mapped[int] = mapped_column(Integer)
    district: Mapped[str] = mapped_column(String(60))  # last seen
    cluster: Mapped[str] = mapped_column(String(60))
    village: Mapped[str] = mapped_column(String(80))
    first_district: Mapped[str] = mapped_column(String(60))  # first seen: the model groups CV folds by it
    first_cluster: Mapped[str] = mapped_column(String(60))
    first_village: Mapped[str] = mapped_column(String(80))
    observed_status: Mapped[str | None] = mapped_column(String(20))  # of the latest visit
    risk_band: Mapped[str | None] = mapped_column(String(10))
    model_version: Mapped[str | None] = mapped_column(String(20))
    p_vulnerable: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_household_registry_village", "district", "cluster", "village"),)
