"""Quality thresholds per ingestion: completeness, quarantine rate, pass rate per rule, volume; breach alerts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from sqlalchemy import select

from tasks.monitoring.alerts import Alert, notify
from tasks.platform.catalog import Catalog, Ingestion
from tasks.platform.settings import Settings

if TYPE_CHECKING:
    from tasks.runtime import Runtime

DONE = ("completed", "completed_with_quarantine")


class BreachRecord(TypedDict):
    """A breach as plain JSON (`Breach.as_dict`): what flows return and reports list."""

    check: str
    subject: str
    observed: float | str
    limit: float | str
    detail: str


@dataclass(frozen=True)
class Breach:
    """One threshold crossed: which check, by what (ingestion or deployment), observed against the limit."""

    check: str  # completeness, quarantine_rate, rule:<name>, volume, run_failed, run_late
    subject: str
    observed: float | str
    limit: float | str
    detail: str

    def as_dict(self) -> BreachRecord:
        """The breach as a `BreachRecord`."""
        return {
            "check": self.check,
            "subject": self.subject,
            "observed": self.observed,
            "limit": self.limit,
            "detail": self.detail,
        }


def _volume_history(catalog: Catalog, ingestion: Ingestion, size: int) -> list[int]:
    """Rows received by the source's earlier completed ingestions, newest first."""
    query = (
        select(Ingestion.rows_received)
        .where(
            Ingestion.source == ingestion.source,
            Ingestion.received_at < ingestion.received_at,
            Ingestion.status.in_(DONE),
            Ingestion.rows_received.is_not(None),
        )
        .order_by(Ingestion.received_at.desc())
        .limit(size)
    )
    with catalog.session() as s:
        # the query already excludes NULL; the test only tells mypy so
        return [int(n) for n in s.scalars(query) if n is not None]


def ingestion_breaches(catalog: Catalog, settings: Settings, ingestion: Ingestion) -> list[Breach]:
    """The thresholds one finished ingestion crossed (none for rejected, failed or unfinished ones)."""
    if ingestion.status not in DONE:
        return []
    found, i = [], ingestion.id
    completeness = (ingestion.report or {}).get("completeness")
    if completeness is not None and completeness < settings.completeness_threshold:
        found.append(
            Breach(
                "completeness",
                i,
                completeness,
                settings.completeness_threshold,
                f"{completeness:.1%} of the batch's cells are filled",
            )
        )
    validated = (ingestion.rows_accepted or 0) + (ingestion.rows_quarantined or 0)
    rate = (ingestion.rows_quarantined or 0) / validated if validated else 0.0
    if rate > settings.max_quarantine_rate:
        found.append(
            Breach(
                "quarantine_rate",
                i,
                round(rate, 4),
                settings.max_quarantine_rate,
                f"{ingestion.rows_quarantined:,} of {validated:,} rows held for review",
            )
        )
    for outcome in catalog.rule_outcomes(i):
        if outcome.element_count:
            passed = 1 - outcome.unexpected_count / outcome.element_count
            if passed < settings.min_expectation_pass_rate:
                found.append(
                    Breach(
                        f"rule:{outcome.rule}",
                        i,
                        round(passed, 4),
                        settings.min_expectation_pass_rate,
                        f"{outcome.unexpected_count:,} of {outcome.element_count:,} rows fail "
                        f"{outcome.expectation} on {outcome.column or 'the batch'}",
                    )
                )
    history = _volume_history(catalog, ingestion, settings.volume_history)
    if len(history) >= 3 and ingestion.rows_received is not None:
        median = statistics.median(history)
        if ingestion.rows_received < settings.volume_min_ratio * median:
            found.append(
                Breach(
                    "volume",
                    i,
                    ingestion.rows_received,
                    round(settings.volume_min_ratio * median, 1),
                    f"{ingestion.rows_received:,} rows from '{ingestion.source}', whose last "
                    f"{len(history)} ingestions had a median of {median:,.0f}",
                )
            )
    return found


def breach_alert(breach: Breach) -> Alert:
    """The alert mail for a breach; the same check breached again groups with it."""
    schedule = breach.check.startswith("run_")
    what = (
        f"The deployment {breach.subject}: {breach.detail}."
        if schedule
        else f"Ingestion {breach.subject} crossed the {breach.check} threshold: {breach.detail}."
    )
    return Alert(
        "schedule" if schedule else "quality",
        f"{'schedule' if schedule else 'quality'}:{breach.check}"
        + (f":{breach.subject}" if schedule else ""),
        f"{breach.check} {breach.observed} (limit {breach.limit}) in {breach.subject}",
        what,
        {
            "check": breach.check,
            "observed": breach.observed,
            "limit": breach.limit,
            "subject": breach.subject,
        },
        "pipeline_runs" if schedule else "data_quality",
    )


def check_ingestion(rt: Runtime, ingestion_id: str) -> list[BreachRecord]:
    """Evaluate one ingestion's thresholds and mail each breach; returns the breaches."""
    ingestion = rt.catalog.get(ingestion_id)
    breaches = ingestion_breaches(rt.catalog, rt.settings, ingestion) if ingestion else []
    for breach in breaches:
        notify(rt, breach_alert(breach))
    return [b.as_dict() for b in breaches]


def period_breaches(rt: Runtime, since: datetime) -> list[BreachRecord]:
    """Every threshold the ingestions received since `since` crossed (for reports and health; not mailed)."""
    return [
        b.as_dict()
        for i in rt.catalog.list_ingestions(limit=100_000, since=since)
        for b in ingestion_breaches(rt.catalog, rt.settings, i)
    ]
