"""Review decisions, the retrain backfill and `rtv rounds reassign` keep the household registry exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app
from flows.ingest import ingest
from flows.retrain import retrain
from tasks.ingest import contract, households
from tasks.ingest.generate import generate_panel, write_households
from tasks.ingest.landing import land
from tasks.ingest.rules import PSEUDONYM
from tasks.protection import audit
from tasks.runtime import Runtime
from tasks.workflows.review import ReviewError, approve, held_rows, reject

pytestmark = pytest.mark.usefixtures("prefect_server")


def _ingest(rt: Runtime, path: Path) -> dict[str, Any]:
    return ingest(land(rt, path, source_name=path.name, door="cli", filename=path.name).ingestion_id)


def _visits(rt: Runtime) -> pl.DataFrame:
    with rt.catalog.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT id, household, survey_round, ingestion_id, state, superseded_by, p_vulnerable FROM visits"
            )
        ).all()
    schema = ["id", "household", "survey_round", "ingestion_id", "state", "superseded_by", "p_vulnerable"]
    return pl.DataFrame([tuple(r) for r in found], schema=schema, orient="row", infer_schema_length=None)


def _registry(rt: Runtime, household: str) -> Any:
    with rt.catalog.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT last_visit_id, observed_status, visits FROM household_registry WHERE household = :h"
            ),
            {"h": household},
        ).one()


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_review_backfill_and_reassign_keep_the_registry_exact(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = generate_panel(700, 2, seed=13)
    first, second = panel.rounds
    reports = []
    for survey_round in panel.rounds:
        path = tmp_path / f"{survey_round.label}.csv"
        write_households(survey_round.frame, path)
        reports.append(_ingest(rt, path))
    # a second survey of the same households in the same round: new instance ids, other answers
    resurveyed = second.frame.with_columns(pl.col("phones_owned") + 1, pl.col("instance_id") + "-b")
    write_households(resurveyed, tmp_path / "again.csv")
    again = _ingest(rt, tmp_path / "again.csv")
    assert again["rows_accepted"] == 0
    again_id = again["ingestion_id"]
    held = held_rows(rt, again_id)
    assert held.height == again["rows_quarantined"] > 3
    counted = {r["round"]: r["households"] for r in households.rounds(rt.catalog)}
    before = _visits(rt)

    approved_row, rejected_row = held.row(0, named=True), held.row(1, named=True)
    household, rejected_household = approved_row[PSEUDONYM], rejected_row[PSEUDONYM]
    earlier = households.visit_in_round(rt.catalog, household, second.label)
    kept = households.visit_in_round(rt.catalog, rejected_household, second.label)
    assert earlier is not None and kept is not None

    # an approval interrupted before its decision was recorded is retried: the registry changes once
    record_reviews = rt.catalog.record_reviews

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(rt.catalog, "record_reviews", interrupted)
    with pytest.raises(RuntimeError, match="connection lost"):
        approve(rt, again_id, [approved_row["source_row"]], reviewer="manager@rtv")
    monkeypatch.setattr(rt.catalog, "record_reviews", record_reviews)
    approve(rt, again_id, [approved_row["source_row"]], reviewer="manager@rtv")
    reject(rt, again_id, [rejected_row["source_row"]], reviewer="manager@rtv")
    with pytest.raises(ReviewError, match="not waiting for review"):
        approve(rt, again_id, [approved_row["source_row"]], reviewer="manager@rtv")

    replacing = households.visit_in_round(rt.catalog, household, second.label)
    assert replacing is not None and replacing != earlier
    after = _visits(rt)
    assert after.height == before.height + 1  # one new visit, whatever the retries
    old = after.filter(pl.col("id") == earlier).row(0, named=True)
    assert old["superseded_by"] == replacing and old["state"] == "final"  # the history keeps it
    new = after.filter(pl.col("id") == replacing).row(0, named=True)
    assert new["ingestion_id"] == again_id and new["survey_round"] == second.label
    status = pl.select(contract.progress_status_expr(pl.lit(approved_row[contract.TARGET]))).item()
    last_visit_id, observed_status, _ = _registry(rt, household)
    assert (last_visit_id, observed_status) == (replacing, status)
    # rejecting leaves the earlier visit counted
    assert households.visit_in_round(rt.catalog, rejected_household, second.label) == kept
    assert {r["round"]: r["households"] for r in households.rounds(rt.catalog)} == counted

    # no model served so far: the retrain's backfill scores every visit, the approved one too
    assert after.filter(pl.col("state") == "final")["p_vulnerable"].null_count() == after.height
    retrain(force=True)
    scored = _visits(rt)
    assert scored["p_vulnerable"].null_count() == 0
    with rt.catalog.engine.connect() as connection:
        unscored = connection.execute(
            text("SELECT COUNT(*) FROM household_registry WHERE p_vulnerable IS NULL")
        ).scalar_one()
    assert unscored == 0

    # a round declared wrongly: the first ingestion's visits move, households are counted once
    first_id = reports[0]["ingestion_id"]
    moved = _invoke("rounds", "reassign", first_id, "--round", "2025-baseline")
    assert moved.exit_code == 0, moved.output
    listed = {r["round"]: r["households"] for r in json.loads(_invoke("rounds", "list", "--json").output)}
    assert listed == {"2025-baseline": counted[first.label], second.label: counted[second.label]}
    assert rt.catalog.get(first_id).survey_round == "2025-baseline"  # type: ignore[union-attr]
    event = audit.events(rt.catalog, action="round_reassigned")[0]
    assert event.target == first_id
    assert event.detail == {"from": first.label, "to": "2025-baseline", "visits": reports[0]["rows_accepted"]}

    bad = _invoke("rounds", "reassign", first_id, "--round", "not a round!")
    assert bad.exit_code == 2 and "error:" in bad.output
    unknown = _invoke("rounds", "reassign", "ing-nope", "--round", "2025-x")
    assert unknown.exit_code == 2 and "error:" in unknown.output
    # the second round's households were seen at baseline: moving it there would count them twice
    clash = _invoke("rounds", "reassign", reports[1]["ingestion_id"], "--round", "2025-baseline")
    assert clash.exit_code == 2 and "already have a visit" in clash.output
    assert {r["round"]: r["households"] for r in households.rounds(rt.catalog)} == listed
