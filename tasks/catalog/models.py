"""Catalog tables: what was landed, what became of every row, and where it went."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Ingestion(Base):
    """One landed file or survey batch and its outcome."""

    __tablename__ = "ingestions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(120))
    door: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    raw_key: Mapped[str] = mapped_column(String(255))
    format: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30), index=True)
    submitted_by: Mapped[str | None] = mapped_column(String(120))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(40))
    rows_received: Mapped[int | None]
    rows_accepted: Mapped[int | None]
    rows_quarantined: Mapped[int | None]
    rows_duplicate: Mapped[int | None]
    report: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class RuleOutcome(Base):
    """How many rows of an ingestion failed one validation rule."""

    __tablename__ = "rule_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ingestion_id: Mapped[str] = mapped_column(ForeignKey("ingestions.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(120))
    expectation: Mapped[str] = mapped_column(String(120))
    column: Mapped[str | None] = mapped_column(String(255))
    unexpected_count: Mapped[int]
    element_count: Mapped[int]


class QualityMetric(Base):
    """A batch-level quality figure (completeness, pass rate, means) of an ingestion."""

    __tablename__ = "quality_metrics"

    ingestion_id: Mapped[str] = mapped_column(ForeignKey("ingestions.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class ZoneObject(Base):
    """Lineage: an object written to a zone from an ingestion's raw file."""

    __tablename__ = "zone_objects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ingestion_id: Mapped[str] = mapped_column(ForeignKey("ingestions.id", ondelete="CASCADE"), index=True)
    zone: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    rows: Mapped[int | None]
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None]


class RowIdentity(Base):
    """A row already stored (validated or quarantine): later copies of it are duplicates."""

    __tablename__ = "row_identities"

    identity: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(32))
    ingestion_id: Mapped[str] = mapped_column(ForeignKey("ingestions.id", ondelete="CASCADE"))

    __table_args__ = (Index("ix_row_identities_ingestion", "ingestion_id"),)


class ModelDecision(Base):
    """One retrain decision: what triggered it, why, and which version it produced (if any)."""

    __tablename__ = "model_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    triggers: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    new_labelled_rows: Mapped[int | None]
    accuracy_on_new: Mapped[float | None]
    model_name: Mapped[str | None] = mapped_column(String(120))
    model_version: Mapped[str | None] = mapped_column(String(20))
    alias: Mapped[str | None] = mapped_column(String(20))
    metrics: Mapped[dict[str, Any] | None]
    flow_run_id: Mapped[str | None] = mapped_column(String(40))


class Review(Base):
    """A reviewer's decision on one quarantined row: approved (moved to validated) or rejected (kept, closed)."""

    __tablename__ = "reviews"

    ingestion_id: Mapped[str] = mapped_column(ForeignKey("ingestions.id", ondelete="CASCADE"), primary_key=True)
    source_row: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision: Mapped[str] = mapped_column(String(20))
    reviewer: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime] = mapped_column(default=utcnow)
    object_key: Mapped[str | None] = mapped_column(String(255))


class User(Base):
    """Someone who signs in to the API or the dashboard, with one role."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who landed, viewed, exported, decrypted, approved or rotated what, and when. Rows are never changed."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any] | None]
