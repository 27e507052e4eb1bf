"""Drift in the pipeline: the champion's reference snapshot, drift per ingestion and per week, stored and alerted.

Input drift is alerted and fires the `drift` retrain trigger; programme change (the outcome and its income
columns moved) is stored and reported with it, never alerted as drift.

Plain loaders for the dashboard: `latest_drift(catalog, limit)` and `drift_for(catalog, ingestion_id)`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from tasks.ingest import contract
from tasks.model.lifecycle import DONE, processed_rows
from tasks.model.registry import CHAMPION, has_store
from tasks.monitoring.alerts import Alert, notify
from tasks.monitoring.drift_stats import DriftReport, DriftSummary, Reference, detect, reference_profile
from tasks.platform.catalog import Catalog
from tasks.platform.catalog import monitoring as store
from tasks.platform.catalog.models import DriftCheck

if TYPE_CHECKING:
    from tasks.runtime import Runtime

REFERENCE_MAX_ROWS = 50_000  # KS power is set by the batch size long before this; keeps the artifact small

_profiles: dict[tuple[str, str, str], Reference] = {}


def reference_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The monitored columns of a training frame (a seeded sample when large): kept with the model version."""
    monitored = frame.select(c for c in contract.MONITORED_COLUMNS if c in frame.columns)
    return (
        monitored.sample(REFERENCE_MAX_ROWS, seed=0) if monitored.height > REFERENCE_MAX_ROWS else monitored
    )


def champion_reference(rt: Runtime) -> Reference | None:
    """The champion's training snapshot profiled for drift, or None when no champion exists (cached per version)."""
    s = rt.settings
    if not has_store(s.resolved_mlflow_uri):
        return None
    version = rt.registry.version_with(CHAMPION)
    if version is None:
        return None
    key = (s.resolved_mlflow_uri, s.model_name, str(version.version))
    if key not in _profiles:
        frame = rt.registry.reference(version)
        if frame is None:  # a champion trained before references were kept: rebuild it from its snapshot
            frame = processed_rows(rt, rt.registry.snapshot(version).get("ingestions", []))
            if frame.height:
                frame = frame.filter(pl.col(contract.TARGET).is_not_null())
        if frame.height == 0:
            return None
        _profiles[key] = reference_profile(frame, version=str(version.version))
    return _profiles[key]


def drift_alert(result: DriftReport, ingestion_id: str | None, scope: str) -> Alert:
    """The alert mail for a flagged result: which input features moved, by how much (programme change beside)."""
    flagged = sorted(name for name, row in result["features"].items() if row.get("flag"))
    subject = f"ingestion {ingestion_id}" if ingestion_id else f"the {scope} batch"
    numbers: dict[str, Any] = {
        "rows compared": result["rows"],
        "reference rows": result["reference_rows"],
        "champion version": result["reference_version"],
        "overall score (max PSI)": result["score"],
    }
    for name in flagged:
        numbers[name] = ", ".join(
            f"{k} {v}"
            for k, v in result["features"][name].items()
            if k in ("psi", "ks", "ks_p", "chi2", "chi2_p", "js", "new", "missing") and v != []
        )
    if result["programme_change"]:
        numbers["programme change (not drift)"] = ", ".join(
            f"{name} psi {psi}" for name, psi in result["programme_change"].items()
        )
    return Alert(
        "drift",
        f"drift:{scope}:{','.join(flagged)}",
        f"Drift in {subject}: {', '.join(flagged)}",
        f"The monitored features {', '.join(flagged)} of {subject} differ from the champion's training "
        "snapshot (Holm-corrected tests and PSI ≥ the practical floor).",
        numbers,
        "model",
    )


def measure(
    rt: Runtime, frame: pl.DataFrame, *, ingestion_id: str | None = None, scope: str = "ingestion"
) -> DriftReport | None:
    """Drift of a batch against the champion's snapshot; stored in the catalog and alerted when flagged."""
    reference = champion_reference(rt)
    if reference is None:
        return None
    result = detect(reference, frame).as_dict()
    # a plain dict: record_drift takes dict[str, Any], which to mypy a TypedDict is not
    store.record_drift(rt.catalog, ingestion_id=ingestion_id, scope=scope, result=dict(result))
    if result["drift"]:
        notify(rt, drift_alert(result, ingestion_id, scope))
    return result


def drift_of(rt: Runtime, ingestion_id: str) -> StoredDrift | DriftReport | None:
    """The stored drift of an ingestion, computed from its processed rows when it was never stored."""
    stored = drift_for(rt.catalog, ingestion_id)
    if stored is not None:
        return stored
    return measure(rt, processed_rows(rt, [ingestion_id]), ingestion_id=ingestion_id)


def weekly(rt: Runtime, days: float = 7, now: datetime | None = None) -> DriftReport | None:
    """Drift of every row accepted in the last `days`, pooled: single API surveys are too small alone."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    ids = [i.id for i in rt.catalog.list_ingestions(limit=100_000, since=since) if i.status in DONE]
    frame = processed_rows(rt, ids) if ids else pl.DataFrame()
    return measure(rt, frame, scope="weekly") if frame.height else None


class StoredDrift(DriftSummary):
    """A drift result read back from the catalog: which batch, when, and the measured figures."""

    ingestion_id: str | None
    scope: str
    computed_at: str  # ISO 8601, seconds, UTC offset


def _row(check: DriftCheck) -> StoredDrift:
    features: dict[str, Any] = check.features or {}
    return {
        "ingestion_id": check.ingestion_id,
        "scope": check.scope,
        "computed_at": store.aware(check.computed_at).isoformat(timespec="seconds"),
        "drift": check.drift,
        "score": check.score,
        "rows": check.rows,
        "reference_version": check.reference_version,
        "features": check.features,
        # derived from the per-feature rows (no catalog column); results stored before the split read back {}
        "programme_change": {n: row["psi"] for n, row in features.items() if row.get("changed")},
    }


def drift_for(catalog: Catalog, ingestion_id: str) -> StoredDrift | None:
    """The stored drift result of one ingestion (a plain dict), or None."""
    found = store.drift_checks(catalog, ingestion_id=ingestion_id, limit=1)
    return _row(found[0]) if found else None


def latest_drift(catalog: Catalog, limit: int = 20) -> list[StoredDrift]:
    """The newest drift results (per ingestion and weekly), newest first, as plain dicts."""
    return [_row(c) for c in store.drift_checks(catalog, limit=limit)]
