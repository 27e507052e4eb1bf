"""Housekeeping flows: the daily quality report and the weekly archive."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.weekly import publish_report
from tasks.archive import archive_old
from tasks.quality import quality_summary
from tasks.retry import io_task
from tasks.runtime import Runtime, runtime_for
from tasks.settings import Settings


@io_task
def archive_step(rt: Runtime) -> dict[str, int]:
    """Move everything older than the archive age into archive/ (copy, record, delete)."""
    return archive_old(rt, older_than_days=rt.settings.archive_after_days)


@flow(name="daily-quality", log_prints=False)
def daily_quality() -> dict[str, Any]:
    """01:00 Kampala: yesterday's ingestions, pass rates and quarantine reasons."""
    rt = runtime_for(Settings())
    summary = quality_summary(rt.catalog, days=1)
    return {"summary": summary, "report": publish_report(rt, "daily-quality", summary, "Daily data quality")}


@flow(name="archive", log_prints=False)
def weekly_archive() -> dict[str, int]:
    """Sunday 05:00 Kampala: archive zone objects and raw files older than RTV_ARCHIVE_AFTER_DAYS."""
    rt = runtime_for(Settings())
    moved = archive_step(rt)
    get_run_logger().info("archived %(objects)d zone objects and %(raw_files)d raw files (%(bytes)d bytes)", moved)
    return moved
