"""Catalog table of the villages assigned to each field officer: the scope of their follow-up worklist."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tasks.platform.catalog.models import Base, utcnow


class OfficerVillage(Base):
    """One village (district, cluster, village: names repeat across clusters) assigned to one user."""

    __tablename__ = "officer_villages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"))
    district: Mapped[str] = mapped_column(String(60))  # the widths of the same columns in `visits`
    cluster: Mapped[str] = mapped_column(String(60))
    village: Mapped[str] = mapped_column(String(80))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)

    # leads with user_name: the lookup of one officer's villages is a seek on this index
    __table_args__ = (
        UniqueConstraint("user_name", "district", "cluster", "village", name="uq_officer_villages"),
    )
