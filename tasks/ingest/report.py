"""The import report: what happened to one ingestion, as JSON for machines and markdown for people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from tasks.platform.catalog import Ingestion

Status = Literal[
    "landed", "running", "completed", "completed_with_quarantine", "duplicate_file", "rejected", "failed"
]


class ImportReport(BaseModel):
    """One ingestion's outcome. Invariant: rows_received = rows_accepted + rows_quarantined + rows_duplicate."""

    ingestion_id: str
    status: Status
    source: str
    door: str = "cli"
    sha256: str
    size_bytes: int = 0
    format: str | None = None
    rows_received: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    duplicates_within_file: int = 0
    duplicates_of_earlier: int = 0
    fixes: dict[str, int] = Field(default_factory=dict)
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)
    rounds: dict[str, int] = Field(default_factory=dict)  # accepted rows per survey round
    rounds_quarantined: dict[str, int] = Field(default_factory=dict)  # quarantined rows per survey round
    declared_round: str | None = None  # the round declared at landing; None: rounds came from the rows' dates
    batch_checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    completeness: float | None = None
    unknown_columns: list[str] = Field(default_factory=list)
    missing_columns: list[str] = Field(default_factory=list)
    computed_columns: list[str] = Field(default_factory=list)
    zones: dict[str, str] = Field(default_factory=dict)
    data_docs: str | None = None
    predictions: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    duplicate_of: str | None = None
    warnings: list[str] = Field(default_factory=list)
    received_at: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)

    def check_balance(self) -> None:
        """Raise if rows were lost or invented."""
        total = self.rows_accepted + self.rows_quarantined + self.rows_duplicate
        if total != self.rows_received:
            raise AssertionError(f"row balance broken: received {self.rows_received}, accounted {total}")

    @property
    def pass_rate(self) -> float | None:
        validated = self.rows_accepted + self.rows_quarantined
        return self.rows_accepted / validated if validated else None

    def _rounds_markdown(self) -> list[str]:
        """The survey rounds section: rows per round, and whether the round was declared or taken from dates."""
        labels = sorted(set(self.rounds) | set(self.rounds_quarantined))
        if not labels:
            return []
        origin = (
            f"declared at landing as `{self.declared_round}`"
            if self.declared_round
            else "from each row's submitted_at, else the landing time (UTC)"
        )
        lines = ["## Survey rounds", "", f"Rounds {origin}.", "", "| round | accepted | quarantined |"]
        lines.append("|---|---:|---:|")
        lines += [
            f"| {k} | {self.rounds.get(k, 0):,} | {self.rounds_quarantined.get(k, 0):,} |" for k in labels
        ]
        return [*lines, ""]

    def to_markdown(self) -> str:
        """A short report for the Prefect artifact and the dashboard."""
        lines = [
            f"# Import report `{self.ingestion_id}`",
            "",
            f"**Status:** {self.status}  ·  **source:** {self.source}  ·  **door:** {self.door}  ·  "
            f"**format:** {self.format or '—'}",
            "",
        ]
        if self.reason:
            lines += [f"**Reason:** {self.reason}", ""]
        if self.duplicate_of:
            lines += [
                f"These bytes were already ingested as `{self.duplicate_of}`; nothing was stored again.",
                "",
            ]
        lines += [
            "| rows received | accepted | quarantined | duplicate |",
            "|---:|---:|---:|---:|",
            f"| {self.rows_received:,} | {self.rows_accepted:,} | {self.rows_quarantined:,} | {self.rows_duplicate:,} |",
            "",
        ]
        if self.completeness is not None:
            lines += [
                f"Completeness {self.completeness:.1%}; pass rate {self.pass_rate:.1%}."
                if self.pass_rate is not None
                else "",
                "",
            ]
        lines += self._rounds_markdown()
        for title, table in (
            ("Quarantine reasons (rows)", self.quarantine_reasons),
            ("Fixes applied", self.fixes),
        ):
            if table:
                lines += [f"## {title}", "", "| rule | count |", "|---|---:|"]
                lines += [f"| {k} | {v:,} |" for k, v in sorted(table.items(), key=lambda kv: -kv[1])]
                lines.append("")
        if self.batch_checks:
            lines += ["## Batch checks", "", "| check | passed | observed |", "|---|---|---:|"]
            lines += [
                f"| {k} | {'yes' if v.get('passed') else '**no**'} | {_fmt(v.get('observed'))} |"
                for k, v in self.batch_checks.items()
            ]
            lines.append("")
        if self.warnings:
            lines += ["## Warnings", "", *[f"- {w}" for w in self.warnings], ""]
        if self.data_docs:
            lines += [f"Great Expectations Data Docs: {self.data_docs}", ""]
        lines.append(f"Took {self.duration_s:.1f} s.")
        return "\n".join(lines)


def utc_iso(moment: datetime | None) -> str | None:
    """ISO time in UTC (SQLite hands datetimes back without their zone)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def duplicate_report(earlier: Ingestion, sha256: str, size_bytes: int) -> ImportReport:
    """The report for bytes landed before: nothing new received or stored; points at the earlier ingestion."""
    return ImportReport(
        ingestion_id=earlier.id,
        status="duplicate_file",
        source=earlier.source,
        door=earlier.door,
        sha256=sha256,
        size_bytes=size_bytes,
        duplicate_of=earlier.id,
        received_at=utc_iso(earlier.received_at),
    )


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
