"""Programme change vs input drift: rising incomes are reported, not a retrain trigger; input shifts still trigger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tasks.ingest import contract
from tasks.ingest.generate import generate_households
from tasks.monitoring.drift_stats import CALIBRATION, PROGRAMME_FEATURES, detect, reference_profile
from tasks.runtime import Runtime

OUTCOME = {"household_income", contract.TARGET}  # the monitored programme columns today


def incomes_rose(frame: pl.DataFrame, factor: float) -> pl.DataFrame:
    """Every collected income and production line times `factor`, every derived total recomputed exactly."""
    scaled = frame.with_columns(pl.col(c) * factor for c in contract.income_columns())
    for derivation in contract.DERIVATIONS:  # formula order: each total is computed from fresh terms
        if derivation.computable:
            total = pl.sum_horizontal([pl.col(t) * k for t, k in derivation.terms])
            scaled = scaled.with_columns(total.alias(derivation.target))
    return scaled


def bigger_households(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns((pl.col("household_size") * 1.3).round().clip(1, 20).cast(pl.Int64))


def test_the_programme_columns_come_from_the_contract() -> None:
    assert set(PROGRAMME_FEATURES) == OUTCOME
    assert set(PROGRAMME_FEATURES) <= set(contract.PROGRAMME_OUTCOME_COLUMNS) == contract.target_closure()
    # money the model reads (savings-group profit, livestock held) is an input, not the outcome
    assert {"vsla_profits_ugx", "livestock_asset_value"}.isdisjoint(contract.PROGRAMME_OUTCOME_COLUMNS)


def test_rising_incomes_are_programme_change_and_input_shifts_are_drift() -> None:
    reference = reference_profile(generate_households(1200, seed=4).frame, version="3")
    follow_up = incomes_rose(generate_households(500, seed=5).frame, 1.5)
    for d in contract.DERIVATIONS:  # the derivations stay exact, as the validation rules demand
        expected = follow_up.select(pl.sum_horizontal([pl.col(t) * k for t, k in d.terms])).to_series()
        assert (follow_up[d.target] - expected).abs().le(d.abs_tolerance).all(), d.target

    rose = detect(reference, follow_up).as_dict()
    assert rose["drift"] is False and rose["status"] == "ok"
    assert set(rose["programme_change"]) == OUTCOME
    for name in OUTCOME:
        row = rose["features"][name]
        assert row["kind"] == "programme" and row["changed"] is True and row["flag"] is False
        assert rose["programme_change"][name] == row["psi"] >= CALIBRATION.min_psi
    inputs = [row for row in rose["features"].values() if row["kind"] == "input"]
    assert len(inputs) == len(contract.MONITORED_COLUMNS) - len(OUTCOME) and not any(
        r["flag"] for r in inputs
    )
    assert rose["score"] == max(r["psi"] for r in inputs) < CALIBRATION.min_psi  # the score is input drift

    bigger = detect(reference, bigger_households(generate_households(500, seed=6).frame)).as_dict()
    assert bigger["drift"] is True and bigger["programme_change"] == {}
    assert [n for n, row in bigger["features"].items() if row["flag"]] == ["household_size"]
    assert bigger["score"] == bigger["features"]["household_size"]["psi"]


def test_recent_drift_counts_input_features_only(rt: Runtime) -> None:
    from tasks.model.lifecycle import recent_drift
    from tasks.platform.catalog import monitoring as store

    def stored(features: dict[str, dict[str, Any]]) -> None:
        store.record_drift(
            rt.catalog,
            ingestion_id=None,
            scope="weekly",
            result={"reference_version": "1", "rows": 500, "score": 0.6, "drift": True, "features": features},
        )

    # a result stored before programme change was told apart: only the outcome and income flagged
    stored({"household_income": {"psi": 0.6, "flag": True}, contract.TARGET: {"psi": 0.5, "flag": True}})
    assert recent_drift(rt, "1", 0.0) is None
    stored(
        {
            "household_size": {"psi": 0.3, "flag": True, "kind": "input"},
            "household_income": {"psi": 0.6, "flag": True},
        }
    )
    reason = recent_drift(rt, "1", 0.0)
    assert reason is not None and reason.endswith("): household_size") and "1 check(s)" in reason
    assert recent_drift(rt, "2", 0.0) is None  # another champion's reference


# ---- in the pipeline: a real runtime, the ingest flow's drift check, the retrain triggers ---------------------


def _ingest(rt: Runtime, tmp_path: Path, name: str, frame: pl.DataFrame) -> dict[str, Any]:
    from flows.ingest import ingest
    from tasks.ingest.generate import write_households
    from tasks.ingest.landing import land

    path = tmp_path / f"{name}.csv"
    write_households(frame, path)
    return ingest(land(rt, path, source_name=name, door="cli").ingestion_id)


@pytest.mark.usefixtures("prefect_server")
def test_a_round_where_only_incomes_rose_does_not_fire_the_drift_trigger(rt: Runtime, tmp_path: Path) -> None:
    from flows.retrain import retrain
    from tasks.model.lifecycle import check_triggers, recent_drift
    from tasks.monitoring import drift

    _ingest(rt, tmp_path, "baseline", generate_households(1000, seed=11).frame)
    assert retrain(force=True)["alias"] == "champion"
    champion = rt.champion()
    assert champion is not None

    rose = _ingest(rt, tmp_path, "follow-up", incomes_rose(generate_households(400, seed=12).frame, 1.5))
    assert rose["rows_accepted"] == 400  # exact derivations: nothing quarantined
    stored = drift.drift_for(rt.catalog, rose["ingestion_id"])
    assert stored is not None and stored["drift"] is False and stored["reference_version"] == champion.version
    assert set(stored["programme_change"]) == OUTCOME
    assert all(stored["features"][n]["kind"] == "programme" for n in OUTCOME)
    assert not any(row.get("flag") for row in stored["features"].values())  # what the dashboard counts
    check = check_triggers(rt, champion)
    assert "drift" not in check.fired and recent_drift(rt, champion.version, champion.created_at) is None
    assert "new_samples" in check.fired  # the new round is still learnt from: it is new labelled data

    shifted = _ingest(rt, tmp_path, "bigger", bigger_households(generate_households(400, seed=13).frame))
    stored = drift.drift_for(rt.catalog, shifted["ingestion_id"])
    assert stored is not None and stored["drift"] is True and stored["programme_change"] == {}
    assert [n for n, row in stored["features"].items() if row["flag"]] == ["household_size"]
    check = check_triggers(rt, champion)
    assert "drift" in check.fired
    reason = check.reasons[check.fired.index("drift")]
    assert shifted["ingestion_id"] in reason and rose["ingestion_id"] not in reason
    assert reason.endswith(": household_size")
