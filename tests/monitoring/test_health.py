"""Pipeline health: the weighted score, its bands, readiness, and `rtv health`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.monitoring.health import WEIGHTS, band, health_report
from tasks.platform.settings import Settings
from tasks.runtime import Runtime


def _ingestion(rt: Runtime, n: int, status: str, quarantined: int = 0) -> None:
    ingestion_id = f"ing-20261126-00000{n}-h"
    rt.catalog.add_ingestion(
        id=ingestion_id,
        source="s",
        door="cli",
        sha256=f"{n:064d}",
        size_bytes=1,
        raw_key="raw/x",
        status="landed",
    )
    if status == "failed":
        rt.catalog.fail(ingestion_id, "failed", "storage unreachable")
        return
    rt.catalog.record_result(
        ingestion_id,
        status=status,
        rule_outcomes=[],
        metrics={},
        objects=[],
        report={
            "rows_received": 100,
            "rows_accepted": 100 - quarantined,
            "rows_quarantined": quarantined,
            "rows_duplicate": 0,
            "completeness": 0.99,
        },
    )


def test_bands() -> None:
    assert [band(s) for s in (100, 90, 89.9, 70, 69.9, 0)] == [
        "healthy",
        "healthy",
        "degraded",
        "degraded",
        "unhealthy",
        "unhealthy",
    ]


def test_no_champion_is_degraded_and_failures_lower_the_score(rt: Runtime) -> None:
    fresh = health_report(rt, run_states=[])
    assert (fresh.score, fresh.band) == (80.0, "degraded")  # nothing scores households yet
    assert fresh.components["model"].score == 0 and fresh.components["system"].score == 100
    _ingestion(rt, 1, "completed")
    _ingestion(rt, 2, "completed_with_quarantine", quarantined=40)  # 40% held: over RTV_MAX_QUARANTINE_RATE
    report = health_report(rt, run_states=["COMPLETED", "COMPLETED", "FAILED", "CRASHED", "RUNNING"])
    assert report.components["runs"].score == 50.0 and report.components["runs"].figures["runs"] == 4
    assert report.components["quality"].score == 50.0
    assert report.components["quality"].figures["breached"] == ["ing-20261126-000002-h"]
    assert report.score == pytest.approx(0.4 * 50 + 0.3 * 50 + 0.1 * 100) and report.band == "unhealthy"


def test_without_prefect_the_catalog_tells_how_runs_went(rt: Runtime) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _ingestion(rt, 1, "completed")
    _ingestion(rt, 2, "failed")
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:1/api"}):  # nothing listens there
        runs = health_report(rt, now=datetime.now(UTC) + timedelta(minutes=1)).components["runs"]
    assert runs.score == 50.0 and "Prefect API not reachable" in runs.detail


def test_an_unreachable_catalog_is_unhealthy(rtv_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.runtime import runtime_for

    monkeypatch.setenv("RTV_CATALOG_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    report = health_report(runtime_for(Settings()), run_states=["COMPLETED"])
    system = report.components["system"]
    assert report.band == "unhealthy" and system.score == 50.0
    assert system.figures == {"catalog": False, "storage": True} and "catalog unreachable" in system.detail


def test_rtv_health_json(rtv_env: Settings) -> None:
    result = CliRunner().invoke(app, ["health", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    parts = printed["components"]
    assert list(parts) == ["runs", "quality", "model", "system"]
    assert parts["model"]["score"] == 0 and parts["model"]["detail"].startswith("no champion")
    assert printed["score"] == pytest.approx(sum(WEIGHTS[n] * p["score"] for n, p in parts.items()), abs=0.1)
    assert printed["band"] == band(printed["score"]) != "healthy"  # without a champion it cannot be healthy
