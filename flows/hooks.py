"""Prefect state hooks shared by the flows: mail a failed or crashed run (identical failures are grouped)."""

from __future__ import annotations

from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State

from tasks.monitoring.alerts import flow_failure, notify
from tasks.platform.settings import Settings
from tasks.runtime import runtime_for


def alert_failure(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """on_failure / on_crashed hook: one mail with the flow, the run, its parameters and the error."""
    alert = flow_failure(
        flow.name,
        flow_run.name,
        str(flow_run.id),
        state.name or str(state.type),
        state.message,
        dict(flow_run.parameters or {}),
    )
    notify(runtime_for(Settings()), alert)
