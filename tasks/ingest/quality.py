"""Quality reports over a period: what arrived, how clean it was, what was held and why."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from tasks.platform.catalog import Catalog

DONE = ("completed", "completed_with_quarantine")


class IngestionQuality(TypedDict):
    """Row counts and rates of one finished ingestion."""

    ingestion_id: str
    source: str
    door: str
    received: int
    accepted: int
    quarantined: int
    duplicate: int
    pass_rate: float | None
    completeness: float | None


class FailedIngestion(TypedDict):
    """An ingestion that failed or was rejected, with its one-line reason."""

    ingestion_id: str
    status: str
    error: str | None


# functional form: "from" is a Python keyword
QualitySummary = TypedDict(
    "QualitySummary",
    {
        "from": str,
        "to": str,
        "ingestions": int,
        "by_status": dict[str, int],
        "rows_received": int,
        "rows_accepted": int,
        "rows_quarantined": int,
        "pass_rate": float | None,
        "quarantine_reasons": dict[str, int],
        "failed": list[FailedIngestion],
        "per_ingestion": list[IngestionQuality],
    },
)


def quality_summary(catalog: Catalog, *, days: float, now: datetime | None = None) -> QualitySummary:
    """Ingestions received in the last `days`: counts, pass rates, completeness, quarantine by rule."""
    end = now or datetime.now(UTC)
    since = end - timedelta(days=days)
    ingestions = catalog.list_ingestions(limit=100_000, since=since)
    statuses = Counter(i.status for i in ingestions)
    done = [i for i in ingestions if i.status in DONE]
    reasons: Counter[str] = Counter()
    rows: list[IngestionQuality] = []
    for i in done:
        report = i.report or {}
        reasons.update(report.get("quarantine_reasons", {}))
        validated = (i.rows_accepted or 0) + (i.rows_quarantined or 0)
        rows.append(
            {
                "ingestion_id": i.id,
                "source": i.source,
                "door": i.door,
                "received": i.rows_received or 0,
                "accepted": i.rows_accepted or 0,
                "quarantined": i.rows_quarantined or 0,
                "duplicate": i.rows_duplicate or 0,
                "pass_rate": round((i.rows_accepted or 0) / validated, 4) if validated else None,
                "completeness": report.get("completeness"),
            }
        )
    received = sum(r["received"] for r in rows)
    accepted = sum(r["accepted"] for r in rows)
    quarantined = sum(r["quarantined"] for r in rows)
    return {
        "from": since.isoformat(timespec="seconds"),
        "to": end.isoformat(timespec="seconds"),
        "ingestions": len(ingestions),
        "by_status": dict(statuses),
        "rows_received": received,
        "rows_accepted": accepted,
        "rows_quarantined": quarantined,
        "pass_rate": round(accepted / (accepted + quarantined), 4) if accepted + quarantined else None,
        "quarantine_reasons": dict(reasons.most_common()),
        "failed": [
            {"ingestion_id": i.id, "status": i.status, "error": i.error}
            for i in ingestions
            if i.status in ("failed", "rejected")
        ],
        "per_ingestion": rows,
    }


def quality_markdown(summary: QualitySummary, title: str) -> str:
    """The summary as a short markdown report."""
    statuses = ", ".join(f"{k}: {v}" for k, v in summary["by_status"].items()) or "none"
    rate = f"; pass rate {summary['pass_rate']:.1%}." if summary["pass_rate"] is not None else "."
    lines = [
        f"# {title}",
        "",
        f"{summary['from']} → {summary['to']}",
        "",
        f"**{summary['ingestions']}** ingestions ({statuses}); **{summary['rows_received']:,}** rows received, "
        f"{summary['rows_accepted']:,} accepted, {summary['rows_quarantined']:,} quarantined{rate}",
        "",
    ]
    if summary["quarantine_reasons"]:
        lines += ["| quarantine rule | rows |", "|---|---:|"]
        lines += [f"| {k} | {v:,} |" for k, v in list(summary["quarantine_reasons"].items())[:15]]
        lines.append("")
    if summary["failed"]:
        lines += ["## Failed or rejected", ""] + [
            f"- `{f['ingestion_id']}` {f['status']}: {f['error']}" for f in summary["failed"]
        ]
    return "\n".join(lines)
