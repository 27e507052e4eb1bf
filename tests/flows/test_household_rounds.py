"""The ingest flow keeps the household registry: one visit per household and round, counted by household.

Run once per storage backend (local, S3 on moto, Azure on Azurite) and once with the catalog on PostgreSQL
(the registry's SQL differs by dialect; the zones do not change it): not the full cross-product.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.ingest import ingest
from tasks.ingest import households
from tasks.ingest.generate import generate_panel, write_households
from tasks.ingest.landing import land
from tasks.platform.settings import Settings
from tasks.runtime import Runtime, runtime_for
from tasks.workflows.archive import archive_old
from tests.conftest import use_storage

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(params=["local", "s3", "azure", "postgres"])
def rt(request: pytest.FixtureRequest, rtv_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """A runtime on one storage backend with a SQLite catalog, or on local zones with a PostgreSQL catalog."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("RTV_CATALOG_URL", url)
    else:
        use_storage(request.param, request, monkeypatch)
    return runtime_for(Settings())


def _ingest(rt: Runtime, path: Path, survey_round: str | None = None) -> dict[str, Any]:
    landed = land(rt, path, source_name=path.name, door="cli", filename=path.name, survey_round=survey_round)
    if landed.duplicate_of is not None:
        return {"status": "duplicate_file", "ingestion_id": landed.duplicate_of.id}
    return ingest(landed.ingestion_id)


def test_two_rounds_count_households_once_and_repeats_in_a_round_are_held(
    rt: Runtime, tmp_path: Path
) -> None:
    panel = generate_panel(400, 2, seed=5)
    first, second = panel.rounds
    paths = []
    for survey_round in panel.rounds:
        path = tmp_path / f"{survey_round.label}.csv"
        write_households(survey_round.frame, path)
        paths.append(path)

    reports = [_ingest(rt, path) for path in paths]
    assert [r["rounds"] for r in reports] == [
        {first.label: reports[0]["rows_accepted"]},
        {second.label: reports[1]["rows_accepted"]},
    ]
    listed = {r["round"]: r for r in households.rounds(rt.catalog)}
    assert list(listed) == [first.label, second.label]
    assert listed[first.label]["households"] == reports[0]["rows_accepted"]
    assert listed[second.label]["households"] == reports[1]["rows_accepted"]
    both = set(first.frame["household_id"].str.to_uppercase()) & set(
        second.frame["household_id"].str.to_uppercase()
    )
    progress = households.transitions(rt.catalog, first.label, second.label)
    assert progress["households"]["both"] == len(both)

    # the same bytes again, whatever round is declared, are a duplicate file
    assert _ingest(rt, paths[1], survey_round="2026-other")["status"] == "duplicate_file"

    # other answers for the same households in the same round are held for review, not counted twice
    changed = second.frame.with_columns(pl.col("phones_owned") + 1)
    path = tmp_path / "again.csv"
    write_households(changed, path)
    again = _ingest(rt, path)
    assert again["rows_accepted"] == 0
    assert again["quarantine_reasons"]["household.repeated_in_round"] == again["rows_quarantined"] > 0
    after = {r["round"]: r for r in households.rounds(rt.catalog)}
    assert after[second.label]["households"] == listed[second.label]["households"]

    # a year on, the weekly archive moves both rounds' zone objects out of the live zones: what progress,
    # the worklist and the counts need stays readable from the catalog
    latest, worklist = households.latest_visits(rt.catalog), households.followups(rt.catalog, second.label)
    moved = archive_old(rt, older_than_days=180, now=datetime.now(UTC) + timedelta(days=400))
    assert moved["objects"] > 0
    assert not [k for k in rt.store.list("processed/") if k.endswith(".parquet")]
    assert households.transitions(rt.catalog, first.label, second.label) == progress
    assert households.latest_visits(rt.catalog).equals(latest)
    assert households.followups(rt.catalog, second.label).equals(worklist)
    assert worklist.height > 0  # a few households of round 1 were not found in round 2
