"""Partitions give the same processed rows whichever task runner runs them (threads, or Dask)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.ingest import ingest
from tasks.ingest.generate import generate_households, write_households
from tasks.ingest.landing import land
from tasks.ingest.zones import read_zone
from tasks.platform.settings import Settings
from tasks.runtime import runtime_for

pytestmark = pytest.mark.usefixtures("prefect_server")
RANDOM_PER_RUN = ("ingestion_id", "pii_key", "household_id_enc", "officer_id_enc", "device_id_enc")


def processed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: Path, runner: str) -> pl.DataFrame:
    monkeypatch.setenv("RTV_DATA_DIR", str(tmp_path / runner))
    monkeypatch.setenv("RTV_TASK_RUNNER", runner)
    monkeypatch.setenv("RTV_PARTITION_ROWS", "25000")
    rt = runtime_for(Settings())
    report = ingest(land(rt, data, source_name=runner, door="cli").ingestion_id)
    parts = [o for o in rt.catalog.zone_objects(ingestion_id=report["ingestion_id"], zone="processed")]
    assert len(parts) == 4  # 100k rows in partitions of 25k
    return read_zone(rt.store, "processed").drop(RANDOM_PER_RUN).sort("source_row")


def test_dask_local_cluster_matches_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rtv_env: Settings
) -> None:
    data = tmp_path / "batch.csv"
    write_households(generate_households(100_000, seed=81, bad_rate=0.02).frame, data)
    monkeypatch.setenv("RTV_DASK_WORKERS", "2")
    threads = processed(tmp_path, monkeypatch, data, "threads")
    dask = processed(tmp_path, monkeypatch, data, "dask")
    assert threads.height > 95_000
    assert threads.equals(dask)
