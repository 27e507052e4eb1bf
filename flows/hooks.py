"""Prefect state hooks shared by the flows: mail a failed or crashed run (identical failures are grouped)."""

from __future__ import annotations

from typing import Any

from tasks.monitoring.alerts import flow_failure, notify
from tasks.platform.settings import Settings
from tasks.runtime import runtime_for


def alert_failure(flow_obj: Any, run: Any, state: Any) -> None:
    """on_failure / on_crashed hook: one mail with the flow, the run, its parameters and the error."""
    alert = flow_failure(flow_obj.name, run.name, str(run.id), state.name or str(state.type), state.message,
                         dict(run.parameters or {}))
    notify(runtime_for(Settings()), alert)
