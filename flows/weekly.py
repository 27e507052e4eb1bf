"""Weekly ETL: process everything landed since the last run, decide on retraining, write the quality report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.hooks import alert_failure
from flows.ingest import ingest_landed
from flows.retrain import run_retrain
from tasks.ingest.quality import QualitySummary, quality_markdown, quality_summary
from tasks.monitoring import drift
from tasks.monitoring.drift_stats import DriftReport
from tasks.platform.retry import io_task
from tasks.platform.settings import Settings
from tasks.runtime import Runtime, runtime_for


@io_task
def publish_report(rt: Runtime, name: str, summary: QualitySummary, title: str) -> str:
    """Write a quality report to the reports zone and as a Prefect artifact; returns its location."""
    markdown = quality_markdown(summary, title)
    key = f"reports/{name}/{datetime.now(UTC):%Y-%m-%d}.md"
    rt.store.put(key, markdown.encode(), overwrite=True)
    create_markdown_artifact(markdown, key=name, description=title)
    return rt.store.uri(key)


@io_task
def weekly_drift(rt: Runtime) -> DriftReport | None:
    """Drift of the week's accepted rows, pooled, against the champion's snapshot; stored and mailed if flagged."""
    return drift.weekly(rt, days=7)


class WeeklyEtl(TypedDict):
    """One weekly run: the ingestions it caught up on, drift, the retrain decision and the week's quality."""

    processed: list[str]
    drift: dict[str, Any] | None
    retrain: dict[str, Any]
    quality: dict[str, Any]
    report: str


@flow(name="weekly-etl", on_failure=[alert_failure], on_crashed=[alert_failure], log_prints=False)
def weekly_etl() -> WeeklyEtl:
    """Sunday 02:00 Kampala: catch up on landed files, retrain if a trigger fires, publish the week's quality."""
    rt = runtime_for(Settings())
    logger = get_run_logger()
    # 1. Everything landed since the last run
    processed = ingest_landed(include_queued=True)["processed"]
    # 2. Drift of the week's rows against the champion's snapshot (advisory: a failure is logged, not fatal)
    try:
        drifted = weekly_drift(rt)
    except Exception as error:  # noqa: BLE001 - the retrain decision and the report still matter
        logger.warning("weekly drift check failed: %s", error)
        drifted = None
    # 3. The retrain decision (a flagged drift result fires its trigger)
    decision = run_retrain(rt)
    # 4. The week's quality report
    summary = quality_summary(rt.catalog, days=7)
    report = publish_report(rt, "weekly-quality", summary, "Weekly data quality")
    logger.info(
        "weekly ETL: %d ingestions processed, retrain decision %s", len(processed), decision["decision"]
    )
    return {
        "processed": processed,
        "drift": {k: drifted[k] for k in ("drift", "score", "rows")} if drifted else None,
        "retrain": {k: decision[k] for k in ("decision", "reason", "version", "alias")},
        "quality": {
            k: summary[k]
            for k in ("ingestions", "rows_received", "rows_accepted", "rows_quarantined", "pass_rate")
        },
        "report": report,
    }
