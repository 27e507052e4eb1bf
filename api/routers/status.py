"""GET an ingestion's state from the catalog and its Prefect flow run; officers see only their own."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.auth import SignedIn, deny
from api.models import Refused, Status
from tasks.ingest.report import utc_iso
from tasks.protection.users import Action, can

if TYPE_CHECKING:
    from flows.dispatch import RunState

router = APIRouter(prefix="/api/v1", tags=["status"])
INGESTION_ID = re.compile(r"^ing-\d{8}-\d{6}-[0-9a-f]{10}$")
_FAILED_RUN = {"FAILED", "CRASHED", "CANCELLED", "CANCELLING"}


def _run_state(flow_run_id: str) -> RunState | None:
    from flows.dispatch import flow_run_state

    try:
        return flow_run_state(flow_run_id)
    except Exception:  # noqa: BLE001 - Prefect unreachable: the catalog's word stands
        return None


def describe(ingestion: Any) -> Status:
    """The API view of an ingestion: state, counts, quarantine reasons, predictions when completed."""
    state, run = ingestion.status, None
    if state in ("landed", "running") and ingestion.flow_run_id:
        run = _run_state(ingestion.flow_run_id)
        if run and run["type"] in _FAILED_RUN:
            state = "failed"
        elif run and run["type"] == "RUNNING":
            state = "running"
    if state == "duplicate_file":
        state = "completed"
    report = ingestion.report or {}
    done = state in ("completed", "completed_with_quarantine")
    return Status(
        ingestion_id=ingestion.id,
        state=state,
        door=ingestion.door,
        received_at=utc_iso(ingestion.received_at),
        finished_at=utc_iso(ingestion.finished_at),
        format=report.get("format") or ingestion.format,
        flow_run_state=run["name"] if run else None,
        rows_received=ingestion.rows_received,
        rows_accepted=ingestion.rows_accepted,
        rows_quarantined=ingestion.rows_quarantined,
        rows_duplicate=ingestion.rows_duplicate,
        quarantine_reasons=report.get("quarantine_reasons") or {},
        predictions=(report.get("predictions") or {}) if done else None,
        reason=_reason(state, ingestion, report, run),
    )


def _reason(state: str, ingestion: Any, report: dict[str, Any], run: dict[str, Any] | None) -> str | None:
    """Why an ingestion failed or was rejected: the catalog's one-line reason, else the flow run's state name.

    The flow run's own message is not passed on: it can quote an exception, and exceptions can quote data.
    """
    if state not in ("failed", "rejected"):
        return None
    return (
        ingestion.error or report.get("reason") or (f"the ingest flow run is {run['name']}" if run else None)
    )


@router.get(
    "/status/{ingestion_id}",
    response_model=Status,
    responses={403: {"model": Refused}, 404: {"model": Refused}},
)
async def status(ingestion_id: str, request: Request, user: SignedIn) -> Status:
    """landed, running, completed, completed_with_quarantine, failed or rejected, with counts."""
    api = request.app.state.api
    if not can(user.role, Action.READ_OWN):
        await deny(request, user, Action.READ_OWN.value)
    if not INGESTION_ID.match(ingestion_id):
        raise HTTPException(404, "no such ingestion")
    ingestion = await run_in_threadpool(api.rt.catalog.get, ingestion_id)
    if ingestion is None:
        raise HTTPException(404, "no such ingestion")
    if not can(user.role, Action.READ_ALL) and ingestion.submitted_by != user.name:
        await deny(request, user, "read another user's ingestion", ingestion_id)
    return await run_in_threadpool(describe, ingestion)
