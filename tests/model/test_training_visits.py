"""Training reads visits: a superseded visit never trains twice, a moved household stays on one side of a split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import text

from tasks.ingest import contract
from tasks.ingest.generate import generate_households, generate_panel, write_households
from tasks.ingest.rules import PSEUDONYM
from tasks.model.evaluation import cv_splits, holdout_rows, is_holdout, village_groups
from tasks.model.lifecycle import labelled_snapshot, processed_rows
from tasks.runtime import Runtime

pytestmark = pytest.mark.usefixtures("prefect_server")

MOVERS = 24  # households moved by the test, half across the held-out split, half between training villages


def _ingest(rt: Runtime, tmp_path: Path, name: str, frame: pl.DataFrame) -> dict[str, Any]:
    from flows.ingest import ingest
    from tasks.ingest.landing import land

    path = tmp_path / f"{name}.csv"
    write_households(frame, path)
    return ingest(land(rt, path, source_name=name, door="cli").ingestion_id)


def _move(first: pl.DataFrame, second: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    """Round 2 with MOVERS returning households moved to another village of their district; their ids."""
    places = first.select("district", "cluster", "village").unique().sort("district", "cluster", "village")
    places = places.with_columns(is_holdout(places["village"]).alias("held"))
    returning = second.join(first.select("household_id", pl.col("village").alias("was")), on="household_id")
    moves: dict[str, dict[str, str]] = {}
    for i, row in enumerate(returning.sort("household_id").iter_rows(named=True)):
        if len(moves) == MOVERS:
            break
        held = bool(is_holdout(pl.Series([row["was"]]))[0])
        across = i % 2 == 0  # even: to the other side of the held-out split; odd: another training village
        if held and not across:
            continue
        options = places.filter(
            (pl.col("district") == row["district"])
            & (pl.col("village") != row["was"])
            & (pl.col("held") == (not held if across else False))
        )
        if options.height:
            moves[row["household_id"]] = options.row(i % options.height, named=True)
    assert len(moves) == MOVERS
    moved = pl.DataFrame(
        [
            {"household_id": k, **{c: v[c] for c in ("district", "cluster", "village")}}
            for k, v in moves.items()
        ]
    )
    second = second.update(moved, on="household_id")
    return second, set(moves)


def test_training_takes_live_visits_and_groups_a_moved_household_by_its_first_village(
    rt: Runtime, tmp_path: Path
) -> None:
    from tasks.workflows.review import approve, held_rows

    panel = generate_panel(300, 2, seed=8)
    first, second = (r.frame for r in panel.rounds)
    second, movers = _move(first, second)
    reports = [_ingest(rt, tmp_path, r, f) for r, f in (("round-1", first), ("round-2", second))]
    assert [r["rows_quarantined"] for r in reports] == [0, 0]

    # another answer for one household in round 2: held as a repeat, then approved, so it replaces the visit
    repeat = second.filter(pl.col("household_id") == sorted(movers)[0]).with_columns(
        pl.col("phones_owned") + 1, pl.lit("uuid:a-second-survey").alias("instance_id")
    )
    again = _ingest(rt, tmp_path, "round-2-repeat", repeat)
    assert again["quarantine_reasons"] == {"household.repeated_in_round": 1}
    [source_row] = held_rows(rt, again["ingestion_id"])["source_row"].to_list()
    approve(rt, again["ingestion_id"], [source_row], reviewer="tester")

    # an ingestion from before the registry existed: processed rows, no visit for any of them
    old = _ingest(rt, tmp_path, "before-registry", generate_households(60, seed=99).frame)
    with rt.catalog.engine.begin() as connection:
        connection.execute(text("DELETE FROM visits WHERE ingestion_id = :i"), {"i": old["ingestion_id"]})
        [(superseded, replacement)] = connection.execute(
            text(
                "SELECT o.row_identity, n.row_identity FROM visits o JOIN visits n ON n.id = o.superseded_by"
            )
        ).all()
        live = connection.execute(
            text("SELECT COUNT(*) FROM visits WHERE state = 'final' AND superseded_by IS NULL")
        ).scalar_one()

    frame, description = labelled_snapshot(rt)
    identities = set(frame["row_identity"].to_list())
    assert superseded not in identities and replacement in identities
    assert frame.height == description["rows"] == live + 60
    everything = processed_rows(rt).filter(pl.col(contract.TARGET).is_not_null())
    assert everything.height == frame.height + 1  # only the superseded visit is left out
    assert frame.filter(pl.col("ingestion_id") == old["ingestion_id"]).height == 60
    assert again["ingestion_id"] in description["ingestions"]
    assert (
        frame.group_by(PSEUDONYM, "survey_round").len()["len"].max() == 1
    )  # one row per household and round

    visits = frame.group_by(PSEUDONYM).agg(
        pl.len().alias("rows"),
        pl.col("village").n_unique().alias("villages"),
        pl.col("first_village").n_unique().alias("first_villages"),
    )
    moved = visits.filter(pl.col("villages") > 1)
    assert moved.height >= MOVERS and set(moved["rows"]) == {2} and set(moved["first_villages"]) == {1}
    replaced = frame.filter(pl.col("row_identity") == replacement)[PSEUDONYM].item()
    assert replaced in set(moved[PSEUDONYM]) and frame.filter(pl.col(PSEUDONYM) == replaced).height == 2
    groups = frame.with_columns(group=pl.Series(village_groups(frame)))
    assert groups.group_by(PSEUDONYM).agg(pl.col("group").n_unique())["group"].max() == 1

    held = holdout_rows(frame)
    inside, outside = frame.filter(held), frame.filter(~held)
    assert inside.height and outside.height
    assert not set(inside[PSEUDONYM]) & set(outside[PSEUDONYM])
    statuses = contract.progress_status_labels(outside[contract.TARGET].to_numpy())
    for fit, validate in cv_splits(outside, statuses):
        assert not set(outside[PSEUDONYM].gather(fit)) & set(outside[PSEUDONYM].gather(validate))

    # grouped by the row's own village instead, the moved households would land on both sides
    own = frame.drop("first_district", "first_cluster", "first_village")
    own_held = holdout_rows(own)
    assert set(own.filter(own_held)[PSEUDONYM]) & set(own.filter(~own_held)[PSEUDONYM])
    own_outside = own.filter(~own_held)
    own_statuses = contract.progress_status_labels(own_outside[contract.TARGET].to_numpy())
    assert any(
        set(own_outside[PSEUDONYM].gather(fit)) & set(own_outside[PSEUDONYM].gather(validate))
        for fit, validate in cv_splits(own_outside, own_statuses)
    )
