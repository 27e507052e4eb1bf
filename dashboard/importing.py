"""The Upload page's work: accept a browser upload through `flows.dispatch.accept_and_queue`, read progress."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from dashboard import prefect_view
from flows.dispatch import Accepted, accept_and_queue, flow_run_state, trigger_ingest
from tasks.ingest.report import ImportReport, duplicate_report
from tasks.platform.catalog import Catalog
from tasks.platform.catalog.models import Ingestion
from tasks.runtime import Runtime

PROGRESS = {
    "landed": (0.15, "Landed: stored encrypted in the raw zone"),
    "queued": (0.3, "Queued for a worker"),
    "running": (0.6, "The ingest flow is running: read → conform → validate → write the zones"),
    "done": (1.0, "Finished"),
}


def safe_source(name: str) -> str:
    """A source name for the catalog: the file name without folders or odd characters (never a path)."""
    base = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .")[:120] or "upload"


@dataclass
class _QueueIfReachable:
    """Queue the ingest run only when the Prefect API answers, keeping what the probe found for the page."""

    api: prefect_view.PrefectApi | None = None

    def __call__(self, catalog: Catalog, ingestion_id: str) -> bool:
        # probed here, not up front, so a refused or duplicate upload never waits on an unreachable API
        self.api = prefect_view.prefect_api()
        if self.api.reachable:
            trigger_ingest(catalog, ingestion_id)
        return self.api.reachable


def _why(accepted: Accepted, api: prefect_view.PrefectApi | None) -> str:
    """Why the run was not queued (read only when it was not)."""
    if accepted.error:
        return f"Prefect could not queue it ({accepted.error})"
    if not accepted.queued and api is not None and api.url:
        return f"the Prefect API at {api.url} is not answering"
    return "no Prefect API is configured"


def land_upload(
    rt: Runtime,
    upload: BinaryIO,
    name: str,
    source: str | None,
    actor: str,
    survey_round: str | None = None,
) -> dict[str, Any]:
    """Land the bytes (raises TooLarge / EmptyUpload, BadRoundLabel before anything lands) and queue the ingest flow.

    Returns what the page tracks. A blank `survey_round` declares none: the rows' dates decide.

    A landed file is safe whatever Prefect does: when the flow cannot be queued, the sweep deployments
    (`ingest-landed`, weekly) pick it up, and `why` says so.
    """
    queue = _QueueIfReachable()
    accepted = accept_and_queue(
        rt,
        upload,
        door="upload",
        source_name=safe_source(source or name),
        filename=safe_source(name),
        submitted_by=actor,
        queue=queue,
        survey_round=(survey_round or "").strip() or None,
    )
    landed = accepted.landed
    if landed.duplicate_of is not None:
        return {
            "id": landed.duplicate_of.id,
            "duplicate": True,
            "name": name,
            "sha256": landed.sha256,
            "size": landed.size_bytes,
        }
    return {
        "id": landed.ingestion_id,
        "duplicate": False,
        "name": name,
        "queued": accepted.queued,
        "why": _why(accepted, queue.api),
    }


def progress(ingestion: Ingestion) -> tuple[str, dict[str, Any] | None]:
    """Which step an unfinished import is at (landed, queued, running), and its flow run's state if known."""
    state = None
    if ingestion.flow_run_id and prefect_view.prefect_api().reachable:
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
    return ImportReport(
        ingestion_id=ingestion.id,
        status=ingestion.status,
        source=ingestion.source,
        door=ingestion.door,
        sha256=ingestion.sha256,
        reason=ingestion.error,
    )
