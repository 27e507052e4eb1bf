"""The scheduled flows: weekly ETL catches up on landed files; quality reports; the archive loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from flows.ingest import ingest, ingest_landed
from flows.maintenance import daily_quality
from flows.weekly import weekly_etl
from tasks.ingest.generate import generate_households, write_households
from tasks.ingest.landing import land
from tasks.model.lifecycle import processed_rows
from tasks.platform.settings import Settings
from tasks.runtime import runtime_for
from tasks.workflows.archive import archive_old

pytestmark = pytest.mark.usefixtures("prefect_server")


def landed_file(tmp_path: Path, rows: int, seed: int, bad_rate: float = 0.0) -> str:
    path = tmp_path / f"f{seed}.csv"
    write_households(generate_households(rows, seed=seed, bad_rate=bad_rate).frame, path)
    return land(runtime_for(Settings()), path, source_name=f"f{seed}", door="api").ingestion_id


def test_weekly_etl_processes_landed_files_and_reports(rtv_env: Settings, tmp_path: Path) -> None:
    rt = runtime_for(rtv_env)
    first, second = landed_file(tmp_path, 700, 91), landed_file(tmp_path, 300, 92, bad_rate=0.1)
    assert {rt.catalog.get(i).status for i in (first, second)} == {"landed"}
    summary = weekly_etl()
    assert summary["processed"] == [first, second]  # oldest first
    assert rt.catalog.get(second).status == "completed_with_quarantine"
    assert summary["retrain"]["decision"] == "retrain" and summary["retrain"]["alias"] == "champion"
    assert summary["quality"]["ingestions"] == 2 and summary["quality"]["rows_received"] == 1000
    report = Path(summary["report"].removeprefix("file://")).read_text()
    assert "Weekly data quality" in report and "1,000" in report
    assert weekly_etl()["processed"] == []  # nothing left to catch up


def test_sweep_skips_ingestions_a_run_was_queued_for(rtv_env: Settings, tmp_path: Path) -> None:
    rt = runtime_for(rtv_env)
    queued, loose = landed_file(tmp_path, 50, 93), landed_file(tmp_path, 60, 94)
    rt.catalog.update(queued, flow_run_id="00000000-0000-0000-0000-000000000000")
    assert ingest_landed()["processed"] == [loose]
    assert ingest_landed(include_queued=True)["processed"] == [queued]


def test_daily_quality_counts_yesterdays_ingestions(rtv_env: Settings, tmp_path: Path) -> None:
    ingest(landed_file(tmp_path, 200, 95, bad_rate=0.1))
    result = daily_quality()
    summary = result["summary"]
    assert summary["ingestions"] == 1 and summary["rows_received"] == 200
    assert summary["rows_accepted"] + summary["rows_quarantined"] <= 200 and summary["quarantine_reasons"]
    assert 0 < summary["pass_rate"] < 1


def test_archive_moves_old_objects_and_loses_nothing(rtv_env: Settings, tmp_path: Path) -> None:
    rt = runtime_for(rtv_env)
    report = ingest(landed_file(tmp_path, 400, 96, bad_rate=0.05))
    ingestion_id = report["ingestion_id"]
    before = processed_rows(rt, [ingestion_id]).sort("source_row")
    assert archive_old(rt, older_than_days=180)["objects"] == 0  # nothing is old yet
    moved = archive_old(rt, older_than_days=180, now=datetime.now(UTC) + timedelta(days=181))
    assert moved["objects"] >= 3 and moved["raw_files"] == 1
    assert all(
        o.key.startswith("archive/") and o.archived_at
        for o in rt.catalog.zone_objects(ingestion_id=ingestion_id, include_archived=True)
    )
    assert rt.catalog.zone_objects(ingestion_id=ingestion_id) == []
    assert not any((rt.settings.data_dir / "processed").rglob("*.parquet"))
    assert (
        processed_rows(rt, [ingestion_id]).sort("source_row").equals(before)
    )  # still readable, from archive
    assert rt.catalog.get(ingestion_id).raw_key.startswith("archive/raw/")
    again = CliRunner().invoke(app, ["rerun", ingestion_id, "--force", "--json"])  # the raw file still opens
    assert again.exit_code == 0, again.output


def test_archive_then_retention_purge_on_every_backend(
    storage_backend: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.workflows.archive import purge_expired

    rt = runtime_for(storage_backend)
    report = ingest(landed_file(tmp_path, 300, 97, bad_rate=0.05))
    ingestion_id = report["ingestion_id"]
    later = datetime.now(UTC)
    moved = archive_old(rt, older_than_days=180, now=later + timedelta(days=181))
    assert moved["raw_files"] == 1 and moved["objects"] >= 3
    archived = rt.store.list("archive")
    assert len(archived) == moved["objects"] + 1 and not rt.store.list("validated")

    assert purge_expired(rt, retention_days=365, now=later + timedelta(days=200)) == {
        "objects": 0,
        "raw_files": 0,
        "bytes": 0,
    }  # archived, but not past retention yet
    assert rt.store.list("archive") == archived
    purged = purge_expired(rt, retention_days=365, now=later + timedelta(days=366))
    assert (purged["objects"], purged["raw_files"]) == (moved["objects"], 1)
    assert rt.store.list("archive") == [] and rt.store.list("raw") == []
    lineage = rt.catalog.zone_objects(ingestion_id=ingestion_id, include_archived=True)
    assert lineage and all(o.purged_at for o in lineage)  # the record of what existed stays
    kept = rt.catalog.get(ingestion_id)
    assert kept.raw_purged_at and kept.rows_received == 300  # counts and report outlive the data
    assert purge_expired(rt, retention_days=365, now=later + timedelta(days=400))["objects"] == 0

    rerun = CliRunner().invoke(app, ["rerun", ingestion_id, "--force"])
    assert rerun.exit_code == 1 and "deleted after RTV_RETENTION_DAYS" in rerun.output


def test_weekly_archive_flow_purges_only_with_a_retention_setting(
    rtv_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.maintenance import weekly_archive
    from tasks.protection import audit

    ingest(landed_file(tmp_path, 100, 98))
    assert "purged" not in weekly_archive()
    monkeypatch.setenv("RTV_RETENTION_DAYS", "400")
    result = weekly_archive()
    assert result["objects"] == 0 and result["purged"] == {"objects": 0, "raw_files": 0, "bytes": 0}
    assert (
        audit.events(runtime_for(Settings()).catalog, action="purged") == []
    )  # nothing deleted, nothing logged

    monkeypatch.setenv("RTV_RETENTION_DAYS", "30")  # not after the 180-day archive age: refused
    with pytest.raises(ValueError, match="must exceed RTV_ARCHIVE_AFTER_DAYS"):
        Settings()
