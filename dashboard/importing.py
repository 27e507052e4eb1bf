"""The Upload page's work: land a browser upload through `tasks.ingest.landing.land`, queue the ingest, read progress."""

from __future__ import annotations

import re
from typing import IO, Any

from dashboard import prefect_view
from tasks.ingest.landing import land
from tasks.ingest.report import ImportReport, duplicate_report
from tasks.platform.catalog.models import Ingestion
from tasks.protection import audit
from tasks.runtime import Runtime

PROGRESS = {"landed": (0.15, "Landed: stored encrypted in the raw zone"), "queued": (0.3, "Queued for a worker"),
            "running": (0.6, "The ingest flow is running: read → conform → validate → write the zones"),
            "done": (1.0, "Finished")}


def safe_source(name: str) -> str:
    """A source name for the catalog: the file name without folders or odd characters (never a path)."""
    base = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .")[:120] or "upload"


def land_upload(rt: Runtime, upload: IO[bytes], name: str, source: str | None, actor: str) -> dict[str, Any]:
    """Land the bytes (raises TooLarge / EmptyUpload) and queue the ingest flow; returns what the page tracks.

    A landed file is safe whatever Prefect does: when the flow cannot be queued, the sweep deployments
    (`ingest-landed`, weekly) pick it up, and `why` says so.
    """
    landed = land(rt, upload, source_name=safe_source(source or name), door="upload", filename=safe_source(name),
                  submitted_by=actor)
    if landed.is_duplicate:
        return {"id": landed.duplicate_of.id, "duplicate": True, "name": name, "sha256": landed.sha256,
                "size": landed.size_bytes}
    audit.record(rt.catalog, actor, "landed", landed.ingestion_id, {"door": "upload", "bytes": landed.size_bytes})
    api = prefect_view.prefect_api()
    queued, why = False, "no Prefect API is configured"
    if api.reachable:
        from flows.dispatch import trigger_ingest

        try:
            trigger_ingest(rt.catalog, landed.ingestion_id)
            queued = True
        except Exception as error:  # noqa: BLE001 - the file is safe; the sweep will take it
            why = f"Prefect could not queue it ({type(error).__name__})"
    elif api.url:
        why = f"the Prefect API at {api.url} is not answering"
    return {"id": landed.ingestion_id, "duplicate": False, "name": name, "queued": queued, "why": why}


def progress(ingestion: Ingestion) -> tuple[str, dict[str, Any] | None]:
    """Which step an unfinished import is at (landed, queued, running), and its flow run's state if known."""
    state = None
    if ingestion.flow_run_id and prefect_view.prefect_api().reachable:
        from flows.dispatch import flow_run_state

        try:
            state = flow_run_state(ingestion.flow_run_id)
        except Exception:  # noqa: BLE001 - progress only
            state = None
    if ingestion.status == "running" or (state and state["type"] == "RUNNING"):
        return "running", state
    return ("queued" if ingestion.flow_run_id else "landed"), state


def report_of(ingestion: Ingestion, track: dict[str, Any]) -> ImportReport:
    """The stored import report, or one rebuilt from the catalog row (duplicates, rejections before a report)."""
    if ingestion.report:
        return ImportReport.model_validate(ingestion.report)
    if track.get("duplicate"):
        return duplicate_report(ingestion, track["sha256"], track["size"])
    return ImportReport(ingestion_id=ingestion.id, status=ingestion.status, source=ingestion.source,
                        door=ingestion.door, sha256=ingestion.sha256, reason=ingestion.error)
