"""Weekly ETL: process everything landed since the last run, decide on retraining, write the quality report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.ingest import ingest_landed
from flows.retrain import run_retrain
from tasks.quality import quality_markdown, quality_summary
from tasks.retry import io_task
from tasks.runtime import Runtime, runtime_for
from tasks.settings import Settings


@io_task
def publish_report(rt: Runtime, name: str, summary: dict[str, Any], title: str) -> str:
    """Write a quality report to the reports zone and as a Prefect artifact; returns its location."""
    markdown = quality_markdown(summary, title)
    key = f"reports/{name}/{datetime.now(UTC):%Y-%m-%d}.md"
    rt.store.put(key, markdown.encode(), overwrite=True)
    create_markdown_artifact(markdown, key=name, description=title)
    return rt.store.uri(key)


@flow(name="weekly-etl", log_prints=False)
def weekly_etl() -> dict[str, Any]:
    """Sunday 02:00 Kampala: catch up on landed files, retrain if a trigger fires, publish the week's quality."""
    rt = runtime_for(Settings())
    logger = get_run_logger()
    # 1. Everything landed since the last run
    processed = ingest_landed(include_queued=True)["processed"]
    # 2. The retrain decision (drift feeds in through its trigger)
    decision = run_retrain(rt)
    # 3. The week's quality report
    summary = quality_summary(rt.catalog, days=7)
    report = publish_report(rt, "weekly-quality", summary, "Weekly data quality")
    logger.info("weekly ETL: %d ingestions processed, retrain decision %s", len(processed), decision["decision"])
    return {"processed": processed, "retrain": {k: decision[k] for k in ("decision", "reason", "version", "alias")},
            "quality": {k: summary[k] for k in ("ingestions", "rows_received", "rows_accepted", "rows_quarantined",
                                                "pass_rate")}, "report": report}
