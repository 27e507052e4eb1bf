"""Catalog (metadata database): ingestions, rule outcomes, quality metrics, lineage and row identities."""

from tasks.platform.catalog.models import (
    Ingestion,
    ModelDecision,
    QualityMetric,
    Review,
    RowIdentity,
    RuleOutcome,
    ZoneObject,
)
from tasks.platform.catalog.repo import Catalog, DuplicateFile

__all__ = [
    "Catalog",
    "DuplicateFile",
    "Ingestion",
    "ModelDecision",
    "QualityMetric",
    "Review",
    "RowIdentity",
    "RuleOutcome",
    "ZoneObject",
]
