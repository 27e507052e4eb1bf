"""The quarantine review queue: approved rows join validated, processed and predictions; decisions are final."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.ingest import ingest
from flows.retrain import retrain
from tasks.ingest.generate import generate_households, write_households
from tasks.ingest.landing import land
from tasks.model.lifecycle import processed_rows
from tasks.platform.settings import Settings
from tasks.runtime import runtime_for
from tasks.workflows.review import ReviewError, approve, held_rows, reject

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_approve_and_reject_held_rows(rtv_env: Settings, tmp_path: Path) -> None:
    rt = runtime_for(rtv_env)
    write_households(generate_households(900, seed=61).frame, tmp_path / "clean.csv")
    ingest(land(rt, tmp_path / "clean.csv", source_name="clean", door="cli").ingestion_id)
    champion = retrain(force=True)
    write_households(generate_households(300, seed=62, bad_rate=0.2).frame, tmp_path / "messy.csv")
    report = ingest(land(rt, tmp_path / "messy.csv", source_name="messy", door="cli").ingestion_id)
    ingestion = report["ingestion_id"]
    held = held_rows(rt, ingestion)
    assert held.height == report["rows_quarantined"] > 3
    first, second, third = held["source_row"].head(3).to_list()

    approved = approve(rt, ingestion, [first, second], reviewer="manager@rtv", note="values checked by phone")
    assert approved.decision == "approved" and len(approved.objects) == 3
    validated = {o.key for o in rt.catalog.zone_objects(ingestion_id=ingestion, zone="validated")}
    assert any("review-" in key for key in validated)
    after = processed_rows(rt, [ingestion])
    assert after.height == report["rows_accepted"] + 2
    assert {first, second} <= set(after["source_row"].to_list())
    scored = pl.concat(
        [
            pl.read_parquet(rt.store.open(o.key))
            for o in rt.catalog.zone_objects(ingestion_id=ingestion, zone="predictions")
        ]
    )
    assert (
        scored.filter(pl.col("source_row").is_in([first, second]))["model_version"].to_list()
        == [champion["version"]] * 2
    )

    reject(rt, ingestion, [third], reviewer="manager@rtv", note="duplicate visit")
    remaining = held_rows(rt, ingestion)
    assert remaining.height == held.height - 3 and third not in remaining["source_row"].to_list()
    decisions = {(r.source_row, r.decision, r.reviewer) for r in rt.catalog.reviews(ingestion)}
    assert decisions == {
        (first, "approved", "manager@rtv"),
        (second, "approved", "manager@rtv"),
        (third, "rejected", "manager@rtv"),
    }

    with pytest.raises(ReviewError, match="not waiting for review"):
        approve(rt, ingestion, [first], reviewer="engineer")
    with pytest.raises(ReviewError, match="not waiting for review"):
        reject(rt, ingestion, [999_999], reviewer="engineer")
    with pytest.raises(ReviewError, match="at least one row"):
        approve(rt, ingestion, [], reviewer="engineer")
