"""What the dashboard reads from the Prefect API: recent flow runs, deployments and their next runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import streamlit as st

from dashboard.data import runtime

TTL_PREFECT = 15  # seconds: runs change quickly, but a page rerun must not ask the API every time


@dataclass(frozen=True)
class PrefectApi:
    """Where the Prefect API is and whether it answers."""

    url: str | None
    reachable: bool
    ui_url: str


@st.cache_data(ttl=10, show_spinner=False)
def _reachable(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def prefect_api() -> PrefectApi:
    """The configured Prefect API (PREFECT_API_URL); without one the dashboard never starts a temporary server."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    ui = runtime().settings.prefect_ui_url.rstrip("/")
    return PrefectApi(url, bool(url) and _reachable(url), ui)


def _seconds(run: Any) -> float | None:
    if run.start_time and run.end_time:
        return (run.end_time - run.start_time).total_seconds()
    if run.start_time and run.state_type and run.state_type.value == "RUNNING":
        return (datetime.now(UTC) - run.start_time).total_seconds()
    total = run.total_run_time
    return total.total_seconds() if total else None


RUN_SCHEMA = {
    "flow": pl.String,
    "deployment": pl.String,
    "run": pl.String,
    "state": pl.String,
    "state_type": pl.String,
    "started": pl.Datetime("us", "UTC"),
    "duration_s": pl.Float64,
    "ingestion_id": pl.String,
    "message": pl.String,
    "flow_run_id": pl.String,
    "link": pl.String,
}


@st.cache_data(ttl=TTL_PREFECT, show_spinner="Reading flow runs …")
def flow_runs(api_url: str, ui_url: str, limit: int = 50) -> pl.DataFrame:
    """Recent flow runs (scheduled ones left out), newest first, with state, duration and a UI link."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    started = [t for t in StateType if t is not StateType.SCHEDULED]
    with get_client(sync_client=True) as client:
        # EXPECTED_START_TIME: START_TIME_DESC would put runs that have not started first (stack.md)
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=started))
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=limit,
        )
        flows = {f.id: f.name for f in client.read_flows(limit=200)}
        deployments = {d.id: d.name for d in client.read_deployments(limit=200)}
    rows = [
        {
            "flow": flows.get(r.flow_id, "?"),
            "deployment": deployments.get(r.deployment_id, "—"),
            "run": r.name,
            "state": r.state_name or (r.state.name if r.state else "?"),
            "state_type": r.state_type.value if r.state_type else None,
            "started": r.start_time or r.expected_start_time,
            "duration_s": _seconds(r),
            "ingestion_id": (r.parameters or {}).get("ingestion_id"),
            "message": r.state.message if r.state else None,
            "flow_run_id": str(r.id),
            "link": f"{ui_url}/runs/flow-run/{r.id}",
        }
        for r in runs
    ]
    return pl.DataFrame(rows, schema=RUN_SCHEMA)


@st.cache_data(ttl=TTL_PREFECT, show_spinner=False)
def deployments(api_url: str, ui_url: str) -> pl.DataFrame:
    """Each deployment with its schedule and the next scheduled run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        found = client.read_deployments(limit=200)
        flows = {f.id: f.name for f in client.read_flows(limit=200)}
        scheduled = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
    upcoming: dict[Any, datetime] = {}
    for run in scheduled:
        if run.deployment_id and run.deployment_id not in upcoming and run.expected_start_time:
            upcoming[run.deployment_id] = run.expected_start_time
    rows = []
    for d in found:
        schedules = [s.schedule for s in (d.schedules or []) if getattr(s, "active", True)]
        text = (
            "; ".join(
                f"{getattr(s, 'cron', None) or s} ({getattr(s, 'timezone', None) or 'UTC'})"
                for s in schedules
            )
            or "on demand"
        )
        rows.append(
            {
                "deployment": f"{flows.get(d.flow_id, '?')}/{d.name}",
                "schedule": text,
                "next_run": upcoming.get(d.id),
                "paused": bool(d.paused),
                "link": f"{ui_url}/deployments/deployment/{d.id}",
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "deployment": pl.String,
            "schedule": pl.String,
            "next_run": pl.Datetime("us", "UTC"),
            "paused": pl.Boolean,
            "link": pl.String,
        },
    )
