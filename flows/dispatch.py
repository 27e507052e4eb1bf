"""Hand work to the Prefect server: trigger the ingest deployment, read flow-run states."""

from __future__ import annotations

from typing import Any

from tasks.platform.catalog import Catalog

INGEST_DEPLOYMENT = "ingest/ingest"
SWEEP_DEPLOYMENT = "ingest-landed/ingest-landed"


def trigger_ingest(catalog: Catalog, ingestion_id: str) -> str:
    """Queue an ingest run for a landed file; returns the flow run id (the work happens on a worker).

    The run id goes into the catalog at once, so the sweep (`ingest-landed`) leaves this ingestion alone.
    """
    from prefect.deployments import run_deployment

    flow_run = run_deployment(INGEST_DEPLOYMENT, parameters={"ingestion_id": ingestion_id}, timeout=0,
                              tags=["ingest"])
    catalog.update(ingestion_id, flow_run_id=str(flow_run.id))
    return str(flow_run.id)


def trigger_sweep() -> str:
    """Queue one run that processes every landed ingestion nobody queued (many small surveys, one run)."""
    from prefect.deployments import run_deployment

    return str(run_deployment(SWEEP_DEPLOYMENT, timeout=0, tags=["ingest"]).id)


def flow_run_state(flow_run_id: str) -> dict[str, Any] | None:
    """State name, type and message of a flow run, or None if the server does not know it."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
    except (ObjectNotFound, ValueError):
        return None
    state = run.state
    return {"name": state.name, "type": state.type.value, "message": state.message} if state else None


def mark_crashed(flow_run_id: str, message: str) -> None:
    """Close a flow run that a killed worker left Running, so the run history tells the truth."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            if run.state and not run.state.is_final():
                client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
    except Exception:  # noqa: BLE001 - bookkeeping only: a re-run must not fail because the old run is gone
        pass
