"""Issue 13 acceptance on the real RTV file: a baseline, then the same households a year later, counted once.

The follow-up is a copy of the real file with one non-derived answer (`phones_owned`) changed on every row,
declared as round `2026-follow-up`. Nothing derived from the real file is written outside the test's tmp dir.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.ingest import households

pytestmark = pytest.mark.usefixtures("prefect_server")

BASELINE, FOLLOW_UP = "2025-baseline", "2026-follow-up"


def _cli(*args: str) -> Any:
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code in (0, 1), done.output  # 1: completed with quarantined rows
    return json.loads(done.stdout)


@pytest.fixture
def two_rounds(rt: Any, real_csv: Path, tmp_path: Path) -> dict[str, Any]:
    """The real file as the baseline, its follow-up copy, and the same follow-up sent again with other answers."""
    raw = pl.read_csv(real_csv, infer_schema=False)
    follow_up = tmp_path / "follow-up.csv"
    raw.with_columns((pl.col("phones_owned").cast(pl.Int64, strict=False) + 1).cast(pl.String)).write_csv(
        follow_up
    )
    first = _cli("ingest", str(real_csv), "--round", BASELINE, "--json")
    second = _cli("ingest", str(follow_up), "--round", FOLLOW_UP, "--json")
    return {"rt": rt, "first": first, "second": second, "follow_up": follow_up, "tmp": tmp_path}


def test_real_file_twice_counts_each_household_once(two_rounds: dict[str, Any]) -> None:
    rt, first, second = two_rounds["rt"], two_rounds["first"], two_rounds["second"]
    assert first["rounds"] == {BASELINE: first["rows_accepted"]}
    assert second["rounds"] == {FOLLOW_UP: second["rows_accepted"]}

    listed = {r["round"]: r for r in _cli("rounds", "list", "--json")}
    assert list(listed) == [BASELINE, FOLLOW_UP]
    assert listed[BASELINE]["households"] == first["rows_accepted"] > 3000
    assert listed[FOLLOW_UP]["households"] == second["rows_accepted"]

    latest = households.latest_visits(rt.catalog, [BASELINE, FOLLOW_UP])
    assert latest.height == latest["household"].n_unique() == listed[BASELINE]["households"]  # not doubled

    with rt.catalog.engine.connect() as connection:
        from sqlalchemy import text

        in_both = connection.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT household FROM visits WHERE state = 'final' "
                "AND superseded_by IS NULL GROUP BY household HAVING COUNT(DISTINCT survey_round) = 2) x"
            )
        ).scalar_one()
    progress = _cli("progress", "--json")
    assert progress["rounds"] == [BASELINE, FOLLOW_UP]
    assert progress["households"]["both"] == in_both == listed[FOLLOW_UP]["households"]
    # the status did not change: every transition lies on the diagonal
    assert progress["transitions"], "no transitions at all"
    assert all(set(row) == {before} for before, row in progress["transitions"].items())
    assert progress["improved"] == progress["worsened"] == 0
    assert progress["unchanged"] == sum(n for row in progress["transitions"].values() for n in row.values())


def test_real_follow_up_again_is_a_duplicate_and_other_answers_are_held(two_rounds: dict[str, Any]) -> None:
    rt, second, tmp = two_rounds["rt"], two_rounds["second"], two_rounds["tmp"]
    again = CliRunner().invoke(app, ["ingest", str(two_rounds["follow_up"]), "--round", FOLLOW_UP, "--json"])
    assert json.loads(again.stdout)["status"] == "duplicate_file"

    changed = tmp / "follow-up-changed.csv"
    raw = pl.read_csv(two_rounds["follow_up"], infer_schema=False)
    raw.with_columns((pl.col("radios_owned").cast(pl.Int64, strict=False) + 1).cast(pl.String)).write_csv(
        changed
    )
    held = _cli("ingest", str(changed), "--round", FOLLOW_UP, "--json")
    assert held["rows_accepted"] == 0
    assert held["quarantine_reasons"]["household.repeated_in_round"] >= second["rows_accepted"]
    listed = {r["round"]: r["households"] for r in households.rounds(rt.catalog)}
    assert listed[FOLLOW_UP] == second["rows_accepted"]  # nothing counted twice
