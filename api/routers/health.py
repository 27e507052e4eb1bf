"""Liveness (`/health`) and readiness (`/ready`: catalog, storage, Prefect API, champion model)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.models import ComponentCheck, Ready
from tasks.monitoring.readiness import Check, check_readiness

router = APIRouter(tags=["health"])
READY_CACHE_SECONDS = 5.0  # a load balancer probing every second must not hammer the catalog and Prefect


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def checks(api: Any) -> dict[str, Check]:
    """tasks.monitoring.readiness for this process, plus whether its last hand-off to Prefect succeeded."""
    found = check_readiness(api.rt)
    if found["prefect_api"].ok and api.dispatcher.last_error is not None:
        found["prefect_api"] = Check(False, f"the last ingest trigger failed ({api.dispatcher.last_error})")
    return found


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(request: Request) -> JSONResponse:
    """200 when every dependency answers, 503 otherwise (results cached a few seconds)."""
    api = request.app.state.api
    cached = api.ready_cache
    if cached is None or time.monotonic() - cached[0] > READY_CACHE_SECONDS:
        cached = (time.monotonic(), await run_in_threadpool(checks, api))
        api.ready_cache = cached
    found: dict[str, Check] = cached[1]
    result = Ready(
        ready=all(c.ok for c in found.values()),
        checks={name: ComponentCheck(ok=c.ok, message=c.message) for name, c in found.items()},
    )
    return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)
