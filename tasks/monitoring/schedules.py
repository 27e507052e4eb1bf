"""Scheduled runs: deployments whose latest due run failed or has not started (from the Prefect API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tasks.monitoring.alerts import notify
from tasks.monitoring.thresholds import Breach, BreachRecord, breach_alert
from tasks.platform.catalog.monitoring import aware

if TYPE_CHECKING:
    from tasks.runtime import Runtime


@dataclass(frozen=True)
class ScheduledRun:
    """The latest run of a scheduled deployment that should have started by now."""

    deployment: str
    state_type: str  # Prefect StateType value, e.g. COMPLETED, FAILED, SCHEDULED
    state_name: str
    expected_start: datetime
    run_name: str
    message: str | None = None


def run_breaches(runs: list[ScheduledRun], now: datetime, late_minutes: int) -> list[Breach]:
    """Deployments whose last scheduled run failed or crashed, or has not started `late_minutes` after its time."""
    found = []
    for run in runs:
        late_by = (now - aware(run.expected_start)).total_seconds() / 60
        if run.state_type in ("FAILED", "CRASHED"):
            found.append(
                Breach(
                    "run_failed",
                    run.deployment,
                    run.state_name,
                    "Completed",
                    f"run {run.run_name} due {run.expected_start:%Y-%m-%d %H:%M} UTC ended "
                    f"{run.state_name}: {(run.message or '').splitlines()[0][:200] if run.message else ''}",
                )
            )
        elif run.state_type in ("SCHEDULED", "PENDING") and late_by > late_minutes:
            found.append(
                Breach(
                    "run_late",
                    run.deployment,
                    round(late_by),
                    late_minutes,
                    f"run {run.run_name} due {run.expected_start:%Y-%m-%d %H:%M} UTC has not started "
                    f"after {late_by:.0f} minutes",
                )
            )
    return found


def scheduled_runs(now: datetime) -> list[ScheduledRun]:
    """From the Prefect API: for each deployment with a schedule, its latest run due by `now`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    found = []
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(limit=200)}
        for deployment in client.read_deployments(limit=200):
            if not deployment.schedules:
                continue
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(
                    expected_start_time=FlowRunFilterExpectedStartTime(before_=now)
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=1,
            )
            for run in runs:
                found.append(
                    ScheduledRun(
                        f"{flows.get(deployment.flow_id, '?')}/{deployment.name}",
                        run.state_type.value if run.state_type else "UNKNOWN",
                        run.state_name or "?",
                        run.expected_start_time or now,
                        run.name,
                        run.state.message if run.state else None,
                    )
                )
    return found


def check_schedules(rt: Runtime, now: datetime, runs: list[ScheduledRun] | None = None) -> list[BreachRecord]:
    """Mail each scheduled deployment whose last run failed or is late; returns the breaches."""
    breaches = run_breaches(scheduled_runs(now) if runs is None else runs, now, rt.settings.late_run_minutes)
    for breach in breaches:
        notify(rt, breach_alert(breach), now)
    return [b.as_dict() for b in breaches]
