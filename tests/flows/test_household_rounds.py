"""The ingest flow keeps the household registry: one visit per household and round, counted by household."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.ingest import ingest
from tasks.ingest import households
from tasks.ingest.generate import generate_panel, write_households
from tasks.ingest.landing import land
from tasks.runtime import Runtime

pytestmark = pytest.mark.usefixtures("prefect_server")


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
