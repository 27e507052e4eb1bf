"""Readiness of the platform's dependencies: catalog, storage, Prefect API and champion model, each ok + message.

Plain functions so that every door (the API's `/ready`, the dashboard, health checks) probes the same way.
Messages name the component and the kind of failure, never a secret, a connection string or a data value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import text

if TYPE_CHECKING:
    from tasks.runtime import Runtime


PREFECT_TIMEOUT_SECONDS = 2.0
STORAGE_PROBE_KEY = "raw/.ready"  # never written: asking for it proves the store answers


@dataclass(frozen=True)
class Check:
    """One component's answer."""

    ok: bool
    message: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _probe(what: str, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"; the kind is enough to act on
        return Check(False, f"{what} unreachable ({type(error).__name__})")


def check_catalog(rt: Runtime) -> Check:
    """The catalog database answers a query."""

    def probe() -> Check:
        with rt.catalog.engine.connect() as connection:
            answered = connection.execute(text("SELECT 1")).scalar() == 1
        return Check(
            answered, f"{rt.catalog.engine.dialect.name} answered" if answered else "catalog gave no answer"
        )

    return _probe("catalog", probe)


def check_storage(rt: Runtime) -> Check:
    """The zone store answers a lookup."""

    def probe() -> Check:
        rt.store.exists(STORAGE_PROBE_KEY)
        return Check(True, f"{rt.settings.storage} store answered")

    return _probe("storage", probe)


def check_prefect(api_url: str | None = None) -> Check:
    """The Prefect API (PREFECT_API_URL unless given) answers its health endpoint."""

    def probe() -> Check:
        url = api_url
        if url is None:
            from prefect.settings import PREFECT_API_URL

            url = PREFECT_API_URL.value()
        if not url:
            return Check(False, "PREFECT_API_URL is not set: nothing can queue the ingest flow")
        answer = httpx.get(f"{url.rstrip('/')}/health", timeout=PREFECT_TIMEOUT_SECONDS)
        return Check(answer.status_code == 200, f"Prefect API answered HTTP {answer.status_code}")

    return _probe("Prefect API", probe)


def check_champion(rt: Runtime) -> Check:
    """A champion model is registered (new rows can be scored)."""

    def probe() -> Check:
        from tasks.model.registry import CHAMPION, has_store

        if not has_store(rt.settings.resolved_mlflow_uri):
            return Check(False, "no model store yet: run `rtv retrain`")
        version = rt.registry.alias_version(CHAMPION)
        if version is None:
            return Check(False, "no champion model registered: run `rtv retrain`")
        return Check(True, f"champion is v{version}")

    return _probe("model registry", probe)


def check_readiness(rt: Runtime, prefect_api_url: str | None = None) -> dict[str, Check]:
    """Every dependency probed once: catalog, storage, prefect_api, champion_model."""
    return {
        "catalog": check_catalog(rt),
        "storage": check_storage(rt),
        "prefect_api": check_prefect(prefect_api_url),
        "champion_model": check_champion(rt),
    }
