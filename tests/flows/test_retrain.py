"""Model lifecycle against a real MLflow SQLite store: honest metrics, promotion, rollback, triggers, predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from flows.ingest import ingest
from flows.retrain import retrain
from tasks.ingest import contract
from tasks.ingest.features import add_features
from tasks.ingest.generate import generate_households, write_households
from tasks.ingest.landing import land
from tasks.ingest.zones import read_zone
from tasks.model.evaluation import evaluate
from tasks.model.lifecycle import check_triggers
from tasks.model.registry import CHALLENGER, CHAMPION, PREVIOUS
from tasks.platform.settings import Settings
from tasks.runtime import runtime_for
from tests.model.test_model import FORBIDDEN

pytestmark = pytest.mark.usefixtures("prefect_server")


def ingest_generated(tmp_path: Path, rows: int, seed: int) -> dict[str, Any]:
    path = tmp_path / f"households-{seed}.csv"
    write_households(generate_households(rows, seed=seed).frame, path)
    rt = runtime_for(Settings())
    return ingest(land(rt, path, source_name="test", door="cli").ingestion_id)


def cli_json(*args: str) -> dict[str, Any] | list[Any]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stdout is pure JSON; progress and notices go to stderr


def test_real_file_honest_metrics_beat_the_baseline(rtv_env: Settings, real_csv: Path) -> None:
    rt = runtime_for(rtv_env)
    ingest(land(rt, real_csv, source_name="real", door="cli").ingestion_id)
    summary = cli_json("retrain", "--force", "--json")
    assert summary["decision"] == "retrain" and summary["alias"] == CHAMPION and summary["version"] == "1"
    assert summary["metrics"]["roc_auc"] >= 0.78, summary["metrics"]
    assert summary["metrics"]["macro_f1_4class"] >= 0.40, summary["metrics"]
    assert set(summary["metrics"]) == {"roc_auc", "pr_auc", "accuracy", "macro_f1_4class", "brier"}
    assert not set(summary["features"]) & FORBIDDEN and "HouseholdSize" in summary["features"]
    assert summary["n_train"] + summary["n_holdout"] == 3716
    [decision] = rt.catalog.decisions()
    assert (
        decision.decision == "retrain"
        and decision.model_version == "1"
        and "manual" in decision.triggers["fired"]
    )


def test_promotion_and_rollback(rtv_env: Settings, tmp_path: Path) -> None:
    ingest_generated(tmp_path, 2500, seed=21)
    rt = runtime_for(rtv_env)
    frame = add_features(read_zone(rt.store, "processed"))
    shuffled = frame.with_columns(pl.col(contract.TARGET).shuffle(seed=1))
    registry, margin = rt.registry, rt.settings.promotion_margin

    def register(data: pl.DataFrame) -> Any:
        model, evaluation = evaluate(data)
        version = registry.log(model, evaluation, {"rows": data.height, "ingestions": []}, "card", {})
        return registry.decide(version, evaluation, frame, margin)

    first = register(shuffled)
    assert (first.version, first.alias) == ("1", CHAMPION)  # nothing to beat yet
    better = register(frame)
    assert (better.version, better.alias) == ("2", CHAMPION) and better.compared["new"] > better.compared[
        "champion"
    ]
    assert registry.alias_version(PREVIOUS) == "1"
    worse = register(shuffled)
    assert (worse.version, worse.alias) == ("3", CHALLENGER)
    assert registry.alias_version(CHAMPION) == "2"

    result = CliRunner().invoke(app, ["model", "rollback"])
    assert result.exit_code == 0 and "champion is now v1" in result.output
    assert registry.alias_version(CHAMPION) == "1" and registry.alias_version(PREVIOUS) == "2"
    listed = cli_json("model", "list", "--json")
    assert [v["version"] for v in listed] == ["3", "2", "1"] and listed[2]["aliases"] == [CHAMPION]


def test_retrain_triggers(rtv_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_generated(tmp_path, 1200, seed=31)
    assert retrain()["alias"] == CHAMPION  # no champion yet: the first model is trained and promoted
    ingest_generated(tmp_path, 49, seed=32)
    skipped = retrain()
    assert skipped["decision"] == "skip" and skipped["new_labelled_rows"] == 49 and skipped["triggers"] == []
    ingest_generated(tmp_path, 1, seed=33)
    fifty = retrain()
    assert fifty["decision"] == "retrain" and "new_samples" in fifty["triggers"]

    rt = runtime_for(rtv_env)
    monkeypatch.setenv("RTV_MIN_NEW_SAMPLES", "100000")
    monkeypatch.setenv("RTV_MIN_EVAL_SAMPLES", "20")
    monkeypatch.setenv("RTV_PERFORMANCE_THRESHOLD", "0.99")
    ingest_generated(tmp_path, 60, seed=34)
    strict = runtime_for(Settings())
    check = check_triggers(strict, strict.champion())
    assert (
        check.fired == ["performance"] and check.accuracy_on_new is not None and check.accuracy_on_new < 0.99
    )
    assert retrain()["triggers"] == ["performance"]
    assert [d.decision for d in rt.catalog.decisions()] == ["retrain", "retrain", "skip", "retrain"]


def test_every_accepted_row_is_scored_with_the_champion_version(rtv_env: Settings, tmp_path: Path) -> None:
    early = ingest_generated(tmp_path, 1000, seed=41)  # no model yet: processed, not scored
    rt = runtime_for(rtv_env)
    assert read_zone(rt.store, "predictions").height == 0
    champion = retrain(force=True)
    # households that arrived before any model was serving are scored once a champion exists
    assert champion["backfilled"] == {"objects": 1, "rows": early["rows_accepted"]}
    backfilled = read_zone(rt.store, "predictions", early["ingestion_id"])
    assert backfilled.height == early["rows_accepted"] and set(backfilled["model_version"]) == {
        champion["version"]
    }
    again = retrain(force=True)
    assert again.get("backfilled", {"rows": 0})["rows"] == 0  # nothing scored twice
    report = ingest_generated(tmp_path, 400, seed=42)
    predictions = read_zone(rt.store, "predictions", report["ingestion_id"])
    processed = read_zone(rt.store, "processed", report["ingestion_id"])
    assert predictions.height == report["rows_accepted"] == processed.height
    assert set(predictions["model_version"]) == {champion["version"]}
    assert set(predictions["household_pseudonym"]) == set(processed["household_pseudonym"])
    assert predictions["p_vulnerable"].is_between(0, 1).all()
    assert report["predictions"]["rows_scored"] == report["rows_accepted"]
    assert sum(report["predictions"]["by_risk_band"].values()) == report["rows_accepted"]


def test_predict_scores_a_file_without_ingesting_it(rtv_env: Settings, tmp_path: Path) -> None:
    ingest_generated(tmp_path, 800, seed=51)
    no_model = CliRunner().invoke(app, ["predict", str(tmp_path / "households-51.csv")])
    assert no_model.exit_code == 2 and "no champion model yet" in no_model.output
    retrain(force=True)
    triage = generate_households(120, seed=52).frame.drop(list(contract.target_closure()))  # no income module
    path, out = tmp_path / "triage.csv", tmp_path / "scores.csv"
    write_households(triage, path)
    rt = runtime_for(rtv_env)
    before = len(rt.catalog.list_ingestions())
    summary = cli_json("predict", str(path), "--json", "--out", str(out))
    assert summary["rows"] == 120 and summary["rows_scored"] == 120
    assert sum(summary["by_status"].values()) == 120
    scores = pl.read_csv(out)
    assert (
        scores.height == 120
        and "household_id" not in scores.columns
        and "household_pseudonym" not in scores.columns
    )
    assert len(rt.catalog.list_ingestions()) == before  # nothing was ingested
