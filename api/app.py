"""The field-device REST API: `create_app(settings)` builds it; `rtv api` serves it with uvicorn."""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from anyio import to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware

from api.auth import Tokens
from api.committer import Committer
from api.dispatcher import Dispatcher
from api.errors import ContainErrors, validation_error
from api.limits import IPAllowList, RateLimiter
from api.routers import auth, files, followups, health, status, surveys
from tasks.monitoring.readiness import Check
from tasks.platform.settings import Settings
from tasks.runtime import Runtime, runtime_for

# The event loop parses requests while worker threads land surveys: a short GIL switch interval keeps the loop
# from waiting 5 ms (the default) for each handoff, and a few threads suffice since the catalog has one writer.
SWITCH_INTERVAL_SECONDS = 0.0005
WORKER_THREADS = 8


@dataclass
class ApiState:
    """What every request needs, built once per process."""

    settings: Settings
    rt: Runtime
    tokens: Tokens
    limiter: RateLimiter
    dispatcher: Dispatcher
    committer: Committer
    ready_cache: tuple[float, dict[str, Check]] | None = None


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The API for these Settings (read from the environment when omitted); the Runtime is the composition root."""
    settings = settings or Settings()
    rt = runtime or runtime_for(settings)
    state = ApiState(
        settings,
        rt,
        Tokens(settings),
        RateLimiter(settings.rate_limit_per_minute),
        Dispatcher(settings.dispatch_interval_seconds),
        Committer(rt),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt.catalog  # noqa: B018 - migrate and connect before the first request, not during it
        rt.keyring  # noqa: B018
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        from prefect.deployments import run_deployment  # noqa: F401

        import flows.dispatch  # noqa: F401 - import Prefect now, not in the dispatcher thread under load

        # the imports above leave ~1M long-lived objects: out of the collector's view, a full collection no
        # longer walks them all (a stall of 100+ ms that every request in flight would wait out)
        gc.collect()
        gc.freeze()
        state.dispatcher.start()
        state.committer.start()
        yield
        state.committer.stop()
        state.dispatcher.stop()

    app = FastAPI(
        title="RTV household-survey API",
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs",
        description="Field devices post surveys and files; every door lands bytes and queues the ingest "
        "flow, never processing inline.",
    )
    app.state.api = state
    for router in (health.router, auth.router, surveys.router, files.router, status.router, followups.router):
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, validation_error)
    if settings.cors_origins:  # off by default: field devices are not browsers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if settings.ip_allowlist:
        app.add_middleware(IPAllowList, networks=settings.ip_allowlist)
    app.add_middleware(ContainErrors)  # outermost of ours: nothing below it reaches uvicorn's traceback log
    return app
