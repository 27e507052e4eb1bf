"""Names of the Prefect work pool and deployments, in one place; `prefect.yaml` must agree (a test checks)."""

from __future__ import annotations

from typing import Final

WORK_POOL: Final = "rtv-pool"

# "<flow name>/<deployment name>", as `run_deployment` and `read_deployment_by_name` take them
INGEST: Final = "ingest/ingest"
INGEST_LANDED: Final = "ingest-landed/ingest-landed"
WEEKLY_ETL: Final = "weekly-etl/weekly-etl"
DAILY_QUALITY: Final = "daily-quality/daily-quality"
DAILY_MODEL_CHECK: Final = "retrain/daily-model-check"
WEEKLY_ARCHIVE: Final = "archive/weekly-archive"

SCHEDULED: Final = (WEEKLY_ETL, DAILY_QUALITY, DAILY_MODEL_CHECK, WEEKLY_ARCHIVE)
TRIGGERED: Final = (INGEST, INGEST_LANDED)
ALL: Final = TRIGGERED + SCHEDULED


def deployment_name(full_name: str) -> str:
    """The deployment part of "<flow>/<deployment>" (the name `prefect.yaml` lists)."""
    return full_name.split("/", 1)[1]
