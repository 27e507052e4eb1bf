"""Housekeeping flows: the daily quality report and the weekly archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

from prefect import flow, get_run_logger

from flows.hooks import alert_failure
from flows.weekly import publish_report
from tasks.ingest.quality import QualitySummary, quality_summary
from tasks.monitoring.alerts import flush
from tasks.monitoring.schedules import check_schedules
from tasks.monitoring.thresholds import BreachRecord, period_breaches
from tasks.platform.retry import io_task
from tasks.platform.settings import Settings
from tasks.protection import audit
from tasks.runtime import Runtime, runtime_for
from tasks.workflows.archive import archive_old, purge_expired


@io_task
def archive_step(rt: Runtime) -> dict[str, int]:
    """Move everything older than the archive age into archive/ (copy, record, delete)."""
    return archive_old(rt, older_than_days=rt.settings.archive_after_days)


@io_task
def schedule_check(rt: Runtime) -> list[BreachRecord]:
    """Scheduled deployments whose last run failed or is late (mailed), and the summaries grouped alerts owe."""
    now = datetime.now(UTC)
    breaches = check_schedules(rt, now)
    flush(rt, now)
    return breaches


class DailyQuality(TypedDict):
    """What the daily quality run found and where its report went."""

    summary: QualitySummary
    breaches: list[BreachRecord]
    schedules: list[BreachRecord]
    report: str


class ArchiveRun(TypedDict, total=False):
    """What the weekly archive moved (and, with a retention period, purged)."""

    objects: int
    raw_files: int
    bytes: int
    purged: dict[str, int]


@flow(name="daily-quality", on_failure=[alert_failure], on_crashed=[alert_failure], log_prints=False)
def daily_quality() -> DailyQuality:
    """01:00 Kampala: yesterday's ingestions, pass rates, quarantine reasons, thresholds and scheduled runs."""
    rt = runtime_for(Settings())
    summary = quality_summary(rt.catalog, days=1)
    # threshold breaches were mailed by each ingestion; listed here, not mailed twice
    breaches = period_breaches(rt, datetime.now(UTC) - timedelta(days=1))
    try:
        schedules = schedule_check(rt)
    except Exception as error:  # noqa: BLE001 - the Prefect API may be unreachable; the report still goes out
        get_run_logger().warning("scheduled-run check failed: %s", error)
        schedules = []
    return {
        "summary": summary,
        "breaches": breaches,
        "schedules": schedules,
        "report": publish_report(rt, "daily-quality", summary, "Daily data quality"),
    }


@io_task
def purge_step(rt: Runtime, retention_days: int) -> dict[str, int]:
    """Delete archived objects past RTV_RETENTION_DAYS (only after the archive step has run), and audit it."""
    purged = purge_expired(rt, retention_days=retention_days)
    if purged["objects"] or purged["raw_files"]:
        audit.record(
            rt.catalog, "weekly-archive", "purged", None, {**purged, "retention_days": retention_days}
        )
    return purged


@flow(name="archive", log_prints=False)
def weekly_archive() -> ArchiveRun:
    """Sunday 05:00 Kampala: archive what is older than RTV_ARCHIVE_AFTER_DAYS, then purge past RTV_RETENTION_DAYS."""
    rt = runtime_for(Settings())
    logger = get_run_logger()
    moved = archive_step(rt)
    logger.info("archived %(objects)d zone objects and %(raw_files)d raw files (%(bytes)d bytes)", moved)
    result: ArchiveRun = {
        "objects": moved["objects"],
        "raw_files": moved["raw_files"],
        "bytes": moved["bytes"],
    }
    if rt.settings.retention_days is not None:
        result["purged"] = purge_step(rt, rt.settings.retention_days)
        logger.info(
            "purged %(objects)d archived objects and %(raw_files)d raw files past retention", result["purged"]
        )
    return result
