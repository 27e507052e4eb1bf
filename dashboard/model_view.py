"""What the Model page reads: registered versions, a version's evaluation, retrain decisions; queuing a retrain."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from dashboard.data import TTL_CATALOG, key, runtime
from tasks.platform.deployments import DAILY_MODEL_CHECK
from tasks.runtime import Runtime

TTL_REGISTRY = 60


@st.cache_data(ttl=TTL_REGISTRY, show_spinner="Reading the model registry …")
def _versions(fp: str, _rt: Runtime) -> list[dict[str, Any]]:
    from tasks.model.registry import has_store

    if not has_store(_rt.settings.resolved_mlflow_uri):
        return []  # never create an MLflow store just to find it empty
    return _rt.registry.versions()


def model_versions() -> list[dict[str, Any]]:
    """Registered versions with aliases, CV and held-out metrics, newest first (empty before any training)."""
    rt = runtime()
    return _versions(key(rt), rt)


@st.cache_data(ttl=24 * 3600, show_spinner=False)
def _evaluation(fp: str, run_id: str, _rt: Runtime) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = _rt.registry.client.download_artifacts(run_id, "evaluation.json", folder)
        except Exception:  # noqa: BLE001 - an old run without the file: the page says so
            return {}
        return json.loads(Path(path).read_text())


def evaluation(run_id: str) -> dict[str, Any]:
    """A version's evaluation: cv, holdout, by_district, calibration and feature_importance."""
    rt = runtime()
    return _evaluation(key(rt), run_id, rt)


DECISION_SCHEMA = {
    "decided_at": pl.Datetime("us", "UTC"),
    "decision": pl.String,
    "triggers": pl.String,
    "reason": pl.String,
    "version": pl.String,
    "alias": pl.String,
    "new_labelled_rows": pl.Int64,
    "accuracy_on_new": pl.Float64,
}


@st.cache_data(ttl=TTL_CATALOG, show_spinner=False)
def _decisions(fp: str, _rt: Runtime) -> pl.DataFrame:
    rows = [
        {
            "decided_at": d.decided_at,
            "decision": d.decision,
            "triggers": ", ".join((d.triggers or {}).get("fired", [])),
            "reason": d.reason,
            "version": d.model_version,
            "alias": d.alias,
            "new_labelled_rows": d.new_labelled_rows,
            "accuracy_on_new": d.accuracy_on_new,
        }
        for d in _rt.catalog.decisions(limit=200)
    ]
    return pl.DataFrame(rows, schema=DECISION_SCHEMA)


def decisions() -> pl.DataFrame:
    """Retrain decisions, newest first."""
    rt = runtime()
    return _decisions(key(rt), rt)


def queue_retrain(force: bool = True) -> str:
    """Queue a run of the retrain deployment on a worker; returns the flow run id (raises if Prefect cannot)."""
    from prefect.deployments import run_deployment

    return str(
        run_deployment(DAILY_MODEL_CHECK, parameters={"force": force}, timeout=0, tags=["dashboard"]).id
    )
