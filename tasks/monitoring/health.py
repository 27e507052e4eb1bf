"""Pipeline health 0–100 from runs, quality, model and system (catalog, storage), in bands."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, cast

from tasks.monitoring.readiness import check_catalog, check_storage
from tasks.monitoring.thresholds import DONE, ingestion_breaches

if TYPE_CHECKING:
    from tasks.runtime import Runtime

# The source document's weights: runs matter most, the system least (when it is down nothing else is measured).
WEIGHTS = {"runs": 0.4, "quality": 0.3, "model": 0.2, "system": 0.1}
# The source document's cut-offs (0.9 / 0.7): no champion alone (80) or one run in three failing (87) is degraded.
BANDS = ((90.0, "healthy"), (70.0, "degraded"), (0.0, "unhealthy"))
MODEL_PENALTY = 30.0  # per model problem: too old, drift flagged against it


class Figures(TypedDict, total=False):
    """The numbers behind one component's score; which are present depends on the component."""

    runs: int  # runs: finished runs, and how many completed
    completed: int
    ingestions: int  # quality: finished ingestions, and the ids (up to 20) that crossed a threshold
    breached: list[str]
    version: str  # model: the champion, its age and held-out ROC AUC
    age_days: float
    holdout_roc_auc: float | None
    catalog: bool  # system: whether each probe passed
    storage: bool
    seconds: float  # how long measuring the component took (all but system)


@dataclass
class Component:
    """One part of the score: 0–100, what it is based on, and the figures."""

    score: float
    detail: str
    figures: Figures = field(default_factory=Figures)


class ComponentRecord(TypedDict):
    """A `Component` as plain JSON."""

    score: float
    detail: str
    figures: Figures


class HealthRecord(TypedDict):
    """A `HealthReport` as plain JSON: what `rtv health --json` prints and the dashboard shows."""

    score: float
    band: str
    components: dict[str, ComponentRecord]
    checked_at: str


@dataclass
class HealthReport:
    """The pipeline health score, its band and the four components."""

    score: float
    band: str
    components: dict[str, Component]
    checked_at: str

    def as_dict(self) -> HealthRecord:
        """The report as a `HealthRecord` (a deep copy)."""
        return cast(HealthRecord, asdict(self))  # asdict returns dict[str, Any]; the fields fix its shape


def _prefect_states(since: datetime) -> list[str] | None:
    """End states of flow runs since `since` from the Prefect API; None when no API is configured or it is down."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():  # without a server Prefect would start a temporary one (~20 s): not here
        return None
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterEndTime

    try:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(end_time=FlowRunFilterEndTime(after_=since)), limit=1000
            )
    except Exception:  # noqa: BLE001 - an unreachable API falls back to the catalog's view
        return None
    return [r.state_type.value for r in runs if r.state_type]


def _runs(rt: Runtime, since: datetime, states: list[str] | None) -> Component:
    source = "Prefect flow runs"
    if states is None:
        states = _prefect_states(since)
    if states is None:  # the catalog's view: ingestions that finished or failed
        source = "ingestions (Prefect API not reachable)"
        states = [
            "COMPLETED" if i.status in DONE or i.status in ("rejected", "duplicate_file") else "FAILED"
            for i in rt.catalog.list_ingestions(limit=10_000, since=since)
            if i.status not in ("landed", "running")
        ]
    ended = [s for s in states if s in ("COMPLETED", "FAILED", "CRASHED")]
    if not ended:
        return Component(100.0, f"no finished runs in the period ({source})", {"runs": 0})
    ok = sum(s == "COMPLETED" for s in ended)
    return Component(
        round(100 * ok / len(ended), 1),
        f"{ok} of {len(ended)} {source} completed",
        {"runs": len(ended), "completed": ok},
    )


def _quality(rt: Runtime, since: datetime) -> Component:
    done = [i for i in rt.catalog.list_ingestions(limit=10_000, since=since) if i.status in DONE]
    if not done:
        return Component(100.0, "no ingestions in the period", {"ingestions": 0})
    breached = [i.id for i in done if ingestion_breaches(rt.catalog, rt.settings, i)]
    clean = len(done) - len(breached)
    return Component(
        round(100 * clean / len(done), 1),
        f"{clean} of {len(done)} ingestions within every threshold",
        {"ingestions": len(done), "breached": breached[:20]},
    )


def _model(rt: Runtime, now: datetime) -> Component:
    from tasks.model.lifecycle import recent_drift
    from tasks.model.registry import CHAMPION, has_store

    version = rt.registry.version_with(CHAMPION) if has_store(rt.settings.resolved_mlflow_uri) else None
    if version is None:
        return Component(0.0, "no champion model: nothing scores new households", {})
    created = version.creation_timestamp / 1000
    age = (now.timestamp() - created) / 86400
    metrics = rt.registry.client.get_run(version.run_id).data.metrics
    figures: Figures = {
        "version": str(version.version),
        "age_days": round(age, 1),
        "holdout_roc_auc": metrics.get("holdout_roc_auc"),
    }
    problems = []
    if age >= rt.settings.retrain_max_age_days:
        problems.append(f"{age:.0f} days old (limit {rt.settings.retrain_max_age_days})")
    drift = recent_drift(rt, str(version.version), created)
    if drift:
        problems.append(drift)
    return Component(
        max(0.0, 100 - MODEL_PENALTY * len(problems)),
        "; ".join(problems) or f"champion v{version.version} is current",
        figures,
    )


def _system(rt: Runtime) -> Component:
    catalog, storage = check_catalog(rt), check_storage(rt)  # the same probes as the API's /ready
    checks = {"catalog": catalog, "storage": storage}
    ok = sum(c.ok for c in checks.values())
    return Component(
        100.0 * ok / len(checks),
        ", ".join(f"{k}: {c.message}" for k, c in checks.items()),
        {"catalog": catalog.ok, "storage": storage.ok},
    )


def band(score: float) -> str:
    """healthy ≥ 90, degraded ≥ 70, unhealthy below."""
    return next(name for floor, name in BANDS if score >= floor)


def health_report(
    rt: Runtime, *, days: float = 7, now: datetime | None = None, run_states: list[str] | None = None
) -> HealthReport:
    """The weighted score over the last `days`; the catalog or storage down makes it unhealthy outright."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    system = _system(rt)
    components = {"system": system}
    parts: tuple[tuple[str, Callable[[], Component]], ...] = (
        ("runs", lambda: _runs(rt, since, run_states)),
        ("quality", lambda: _quality(rt, since)),
        ("model", lambda: _model(rt, now)),
    )
    for name, build in parts:
        started = time.monotonic()
        try:
            components[name] = build()
        except Exception as error:  # noqa: BLE001 - a part that cannot be measured scores 0, with the reason
            components[name] = Component(0.0, f"could not be measured: {type(error).__name__}: {error}"[:300])
        components[name].figures["seconds"] = round(time.monotonic() - started, 2)
    score = round(sum(WEIGHTS[n] * c.score for n, c in components.items()), 1)
    verdict = "unhealthy" if system.score < 100 else band(score)
    return HealthReport(
        score, verdict, {n: components[n] for n in WEIGHTS}, now.isoformat(timespec="seconds")
    )
