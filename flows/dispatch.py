"""Hand work to the Prefect server: accept a file and queue its ingest run, trigger sweeps, read flow-run states."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypedDict, cast
from uuid import UUID

from tasks.ingest.landing import Landed, accept_file
from tasks.platform import deployments
from tasks.platform.catalog import Catalog

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

    from tasks.runtime import Runtime


def trigger_ingest(catalog: Catalog, ingestion_id: str) -> str:
    """Queue an ingest run for a landed file; returns the flow run id (the work happens on a worker).

    The run id goes into the catalog at once, so the sweep (`ingest-landed`) leaves this ingestion alone.
    """
    from prefect.deployments import run_deployment

    # sync_compatible: called outside an event loop it returns the FlowRun, not a coroutine
    flow_run = cast(
        "FlowRun",
        run_deployment(
            deployments.INGEST, parameters={"ingestion_id": ingestion_id}, timeout=0, tags=["ingest"]
        ),
    )
    catalog.update(ingestion_id, flow_run_id=str(flow_run.id))
    return str(flow_run.id)


# Queues the ingest run of one landed file; raises (trigger_ingest), or returns False (the API's dispatcher, which
# logs and remembers the failure for /ready), when Prefect cannot take it.
Queue = Callable[[Catalog, str], object]


@dataclass(frozen=True)
class Accepted:
    """A file accepted by a door: its landing receipt, whether its run was queued, and why not if that failed."""

    landed: Landed
    queued: bool
    error: str | None = None  # the exception type name when the queue raised


def accept_and_queue(
    rt: Runtime,
    source: bytes | BinaryIO | Path,
    *,
    door: str,
    source_name: str,
    filename: str | None = None,
    submitted_by: str | None = None,
    file_format: str | None = None,
    queue: Queue | None = None,
    survey_round: str | None = None,
) -> Accepted:
    """Land and audit a file (`accept_file`), then queue its ingest run unless identical bytes were landed before.

    `queue` defaults to `trigger_ingest`. Raises TooLarge / EmptyUpload as `land` does, and BadRoundLabel
    before anything lands when `survey_round` is not a valid round label. A run Prefect cannot take is not an error: the file is durable
    and the sweep deployments (`ingest-landed`, the weekly ETL) pick it up.
    """
    landed = accept_file(
        rt,
        source,
        door=door,
        source_name=source_name,
        filename=filename,
        submitted_by=submitted_by,
        file_format=file_format,
        survey_round=survey_round,
    )
    if landed.is_duplicate:
        return Accepted(landed, queued=False)
    try:
        outcome = (queue or trigger_ingest)(rt.catalog, landed.ingestion_id)
    except Exception as error:  # noqa: BLE001 - the file is safe whatever Prefect does; the sweep takes it
        return Accepted(landed, queued=False, error=type(error).__name__)
    return Accepted(landed, queued=outcome is not False)


def trigger_sweep() -> str:
    """Queue one run that processes every landed ingestion nobody queued (many small surveys, one run)."""
    from prefect.deployments import run_deployment

    return str(cast("FlowRun", run_deployment(deployments.INGEST_LANDED, timeout=0, tags=["ingest"])).id)


class RunState(TypedDict):
    """A flow run's state as the API and the dashboard show it."""

    name: str
    type: str
    message: str | None


def flow_run_state(flow_run_id: str) -> RunState | None:
    """State name, type and message of a flow run, or None if the server does not know it."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
    except (ObjectNotFound, ValueError):
        return None
    state = run.state
    if state is None:
        return None
    return RunState(name=state.name or state.type.value.title(), type=state.type.value, message=state.message)


def mark_crashed(flow_run_id: str, message: str) -> None:
    """Close a flow run that a killed worker left Running, so the run history tells the truth."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    # bookkeeping only: a re-run must not fail because the old run is gone
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        if run.state and not run.state.is_final():
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)


def register_ingest_deployments() -> None:
    """Create the work pool and the two triggered ingest deployments from code (no worker; tests and benches)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import RunnerDeployment
    from prefect.exceptions import ObjectAlreadyExists

    from flows.ingest import ingest, ingest_landed

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=deployments.WORK_POOL, type="process"))
    for flow_obj, name in ((ingest, deployments.INGEST), (ingest_landed, deployments.INGEST_LANDED)):
        deployment = flow_obj.to_deployment(
            name=deployments.deployment_name(name), work_pool_name=deployments.WORK_POOL
        )
        cast(
            "RunnerDeployment", deployment
        ).apply()  # sync_compatible: a plain value when called from sync code
