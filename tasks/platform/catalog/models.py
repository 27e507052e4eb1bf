"""Catalog tables: what was landed, what became of every row, and where it went."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, for prepared Core statements."""
    table = model.__table__  # SQLAlchemy types this as any FromClause; a declarative class maps a Table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


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
    raw_purged_at: Mapped[datetime | None]  # the raw file was deleted after archive and retention
    survey_round: Mapped[str | None] = mapped_column(
        String(40)
    )  # declared at landing; else from the rows' dates


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

    ingestion_id: Mapped[str] = mapped_column(
        ForeignKey("ingestions.id", ondelete="CASCADE"), primary_key=True
    )
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
    purged_at: Mapped[datetime | None]  # deleted after archive and retention; the lineage row stays


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

    ingestion_id: Mapped[str] = mapped_column(
        ForeignKey("ingestions.id", ondelete="CASCADE"), primary_key=True
    )
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


class SurveySubmission(Base):
    """One version of a survey sent through the API (ODK semantics: an edit names the instance it replaces)."""

    __tablename__ = "survey_submissions"

    instance_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[str] = mapped_column(String(128))  # the first instance id of the edit chain
    content_hash: Mapped[str] = mapped_column(String(64))
    ingestion_id: Mapped[str] = mapped_column(ForeignKey("ingestions.id", ondelete="CASCADE"), index=True)
    deprecated_id: Mapped[str | None] = mapped_column(String(128))
    submitted_by: Mapped[str | None] = mapped_column(String(120))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("uq_survey_submissions_chain_version", "chain_id", "version", unique=True),)


class DriftCheck(Base):
    """Drift of one ingestion (or of a week's pooled rows) against the champion's training snapshot."""

    __tablename__ = "drift_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ingestion_id: Mapped[str | None] = mapped_column(
        ForeignKey("ingestions.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(20))  # "ingestion" or "weekly"
    computed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reference_version: Mapped[str | None] = mapped_column(String(20))
    rows: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    drift: Mapped[bool]
    features: Mapped[dict[str, Any]] = mapped_column(JSON)


class AlertGroup(Base):
    """One kind of alert (its key): the open grouping window and how many events it has held back."""

    __tablename__ = "alert_groups"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    window_ends_at: Mapped[datetime]
    first_at: Mapped[datetime]  # first event held back since the last mail
    last_at: Mapped[datetime]
    grouped: Mapped[int] = mapped_column(Integer, default=0)  # events since the last mail, not yet mailed
    total: Mapped[int] = mapped_column(Integer, default=0)
    subject: Mapped[str] = mapped_column(String(255))


class AlertSent(Base):
    """One alert mail: what it said, how many events it covers, whether the SMTP server took it."""

    __tablename__ = "alerts_sent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    subject: Mapped[str] = mapped_column(String(255))
    events: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]
