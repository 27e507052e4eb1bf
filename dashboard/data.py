"""The dashboard's Runtime and its catalog loaders (ingestions, rule outcomes, held rows, drift scores).

This is the only dashboard module that reads Settings (through `runtime()`). The Runtime is an
`st.cache_resource`; frames are `st.cache_data` entries with a TTL, keyed by a fingerprint of the Settings so
two data directories in one process (the tests) never share an entry. Zones: `zones`, `cube`, `rows`;
Prefect: `prefect_view`; MLflow: `model_view`; GX: `data_docs`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import streamlit as st

from dashboard import upload_limit_mb as _limit
from dashboard.zones import zone_keys
from tasks.platform.settings import Settings
from tasks.runtime import Runtime, runtime_for

TTL_CATALOG = 30  # seconds: ingestion lists, decisions, held rows
TTL_ZONES = 600  # aggregates over zone objects (also keyed by the objects, so new data is never missed)
DONE = ("completed", "completed_with_quarantine")
FINAL = (*DONE, "duplicate_file", "rejected", "failed")


@st.cache_resource(show_spinner=False)
def _runtime(fingerprint: str, _settings: Settings) -> Runtime:
    return runtime_for(_settings)


def runtime() -> Runtime:
    """The Runtime (catalog, store, keys, registry) of the current Settings, built once per process."""
    settings = Settings()
    return _runtime(settings.fingerprint(), settings)


def key(rt: Runtime) -> str:
    """Cache key of a runtime's Settings."""
    return rt.settings.fingerprint()


def clear() -> None:
    """Forget cached frames (after an upload, an approval or a rejection)."""
    st.cache_data.clear()


def upload_limit_mb(rt: Runtime | None = None) -> int:
    """Largest upload in MB: RTV_MAX_UPLOAD_BYTES, capped at what a browser upload can carry."""
    return _limit((rt or runtime()).settings.max_upload_bytes)


def recent(days: int) -> datetime:
    """The moment `days` ago (UTC)."""
    return datetime.now(UTC) - timedelta(days=days)


# ---- ingestions ------------------------------------------------------------------------------------------

INGESTION_SCHEMA: dict[str, Any] = {
    "ingestion_id": pl.String,
    "source": pl.String,
    "door": pl.String,
    "filename": pl.String,
    "format": pl.String,
    "status": pl.String,
    "submitted_by": pl.String,
    "received_at": pl.Datetime("us", "UTC"),
    "started_at": pl.Datetime("us", "UTC"),
    "finished_at": pl.Datetime("us", "UTC"),
    "flow_run_id": pl.String,
    "rows_received": pl.Int64,
    "rows_accepted": pl.Int64,
    "rows_quarantined": pl.Int64,
    "rows_duplicate": pl.Int64,
    "pass_rate": pl.Float64,
    "completeness": pl.Float64,
    "fixes": pl.Int64,
    "duration_s": pl.Float64,
    "error": pl.String,
    "quarantine_reasons": pl.String,
    "fix_kinds": pl.String,
}


@st.cache_data(ttl=TTL_CATALOG, show_spinner=False)
def _ingestions(fp: str, _rt: Runtime) -> pl.DataFrame:
    rows = []
    for i in _rt.catalog.list_ingestions(limit=100_000):
        report = i.report or {}
        validated = (i.rows_accepted or 0) + (i.rows_quarantined or 0)
        rows.append(
            {
                "ingestion_id": i.id,
                "source": i.source,
                "door": i.door,
                "filename": i.filename,
                "format": i.format or report.get("format"),
                "status": i.status,
                "submitted_by": i.submitted_by,
                "received_at": i.received_at,
                "started_at": i.started_at,
                "finished_at": i.finished_at,
                "flow_run_id": i.flow_run_id,
                "rows_received": i.rows_received,
                "rows_accepted": i.rows_accepted,
                "rows_quarantined": i.rows_quarantined,
                "rows_duplicate": i.rows_duplicate,
                "pass_rate": (i.rows_accepted or 0) / validated if validated else None,
                "completeness": report.get("completeness"),
                "fixes": sum((report.get("fixes") or {}).values()),
                "duration_s": report.get("duration_s"),
                "error": i.error,
                "quarantine_reasons": json.dumps(report.get("quarantine_reasons") or {}),
                "fix_kinds": json.dumps(report.get("fixes") or {}),
            }
        )
    return pl.DataFrame(rows, schema=INGESTION_SCHEMA)


def ingestions() -> pl.DataFrame:
    """Every ingestion in the catalog, newest first, with its counts and report figures."""
    rt = runtime()
    return _ingestions(key(rt), rt)


def counts_by(ingestions_frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Rows per rule (or fix kind) from the JSON maps of each ingestion, with the ingestion id."""
    rows = [
        (i, name, n)
        for i, text in ingestions_frame.select("ingestion_id", column).iter_rows()
        for name, n in json.loads(text or "{}").items()
    ]
    return pl.DataFrame(
        rows, schema={"ingestion_id": pl.String, "name": pl.String, "rows": pl.Int64}, orient="row"
    )


@st.cache_data(ttl=TTL_CATALOG, show_spinner=False)
def _rule_outcomes(fp: str, ingestion_id: str, _rt: Runtime) -> pl.DataFrame:
    rows = [
        {
            "rule": o.rule,
            "expectation": o.expectation,
            "column": o.column,
            "unexpected": o.unexpected_count,
            "checked": o.element_count,
        }
        for o in _rt.catalog.rule_outcomes(ingestion_id)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "rule": pl.String,
            "expectation": pl.String,
            "column": pl.String,
            "unexpected": pl.Int64,
            "checked": pl.Int64,
        },
    )


def rule_outcomes(ingestion_id: str) -> pl.DataFrame:
    """The GX outcome of every rule that failed at least one row of an ingestion."""
    rt = runtime()
    return _rule_outcomes(key(rt), ingestion_id, rt)


# ---- review queue ----------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL_CATALOG, show_spinner="Reading the review queue …")
def _held(fp: str, quarantine: tuple[str, ...], _rt: Runtime) -> pl.DataFrame:
    from tasks.workflows.review import held_rows

    return held_rows(_rt)


def held() -> pl.DataFrame:
    """Quarantined rows no reviewer has decided on, newest ingestions first (empty when there is none)."""
    rt = runtime()
    return _held(key(rt), zone_keys(rt, "quarantine"), rt)


# ---- drift (stored by tasks/monitoring/drift.py) --------------------------------------------------------------------

DRIFT_CHECKS = 50
DRIFT_SCHEMA = {
    "computed_at": pl.String,
    "scope": pl.String,
    "ingestion_id": pl.String,
    "rows": pl.Int64,
    "score": pl.Float64,
    "drift": pl.Boolean,
    "feature": pl.String,
    "psi": pl.Float64,
    "flag": pl.Boolean,
    "kind": pl.String,  # input (drift triggers a retrain) or programme (the outcome moved: reported only)
    "changed": pl.Boolean,
    "note": pl.String,
}


def _drift_rows(rt: Runtime) -> list[dict[str, Any]]:
    """One row per check and monitored feature, newest check first; [] when nothing (or no drift module) exists."""
    try:
        from tasks.monitoring.drift import latest_drift
    except ImportError:
        return []
    rows = []
    for check in latest_drift(rt.catalog, limit=DRIFT_CHECKS):
        head = {k: check.get(k) for k in ("computed_at", "scope", "ingestion_id", "rows", "score", "drift")}
        for feature, stats in sorted((check.get("features") or {}).items()):
            stats = stats if isinstance(stats, dict) else {}
            rows.append(
                head
                | {
                    "feature": feature,
                    "psi": stats.get("psi"),
                    "flag": bool(stats.get("flag")),
                    "kind": stats.get("kind") or "input",
                    "changed": bool(stats.get("changed") or stats.get("flag")),
                    "note": stats.get("skipped"),
                }
            )
    return rows


@st.cache_data(ttl=TTL_CATALOG, show_spinner=False)
def _drift(fp: str, _rt: Runtime) -> pl.DataFrame:
    try:
        rows = _drift_rows(_rt)
    except Exception:  # noqa: BLE001 - a drift table mid-migration must not take the Data quality page down
        rows = []
    return pl.DataFrame(rows, schema=DRIFT_SCHEMA)


def drift_scores() -> pl.DataFrame:
    """Drift per stored check and feature (PSI, flag), newest check first; empty until the drift check has run."""
    rt = runtime()
    return _drift(key(rt), rt)
