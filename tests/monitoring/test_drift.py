"""Drift: calibrated on the real file (resamples do not flag, real shifts do), stored per ingestion, fed to retrain."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.ingest.conform import conform, score_header
from tasks.ingest.readers import ReadCaps, read_table
from tasks.monitoring.drift_metrics import holm
from tasks.monitoring.drift_stats import CALIBRATION, detect, reference_profile
from tests.support.smtp import point_alerts_at, smtp_server

RUNS, ROWS = 100, 500  # the acceptance: 100 batches the size of a typical upload


@pytest.fixture(scope="module")
def real_frame(real_csv: Path) -> pl.DataFrame:
    table = read_table(real_csv.read_bytes(), ReadCaps(), score_header=score_header)
    return conform(table.frames(), typed=table.typed).frame


def sample(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    return frame[rng.choice(frame.height, size=ROWS, replace=False).tolist()]


def drop_a_district(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    districts = sorted(frame["district"].unique().to_list())
    return sample(frame.filter(pl.col("district") != districts[rng.integers(len(districts))]), rng)


SCENARIOS: dict[str, Callable[[pl.DataFrame, np.random.Generator], pl.DataFrame]] = {
    "household size +30%": lambda f, rng: sample(f, rng).with_columns(
        (pl.col("household_size") * 1.3).round().cast(pl.Int64)
    ),
    "one district missing": drop_a_district,
    "a new district": lambda f, rng: (
        sample(f, rng)
        .with_row_index("i")
        .with_columns(
            pl.when(pl.col("i") < ROWS // 10).then(pl.lit("Kisoro")).otherwise("district").alias("district")
        )
        .drop("i")
    ),
}


def incomes_halved(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """The outcome and household income halved: programme change (backwards), not input drift."""
    return sample(frame, rng).with_columns(
        pl.col("household_income") * 0.5, pl.col("income_consumption_residues_per_day") * 0.5
    )


def test_resamples_of_the_real_file_do_not_flag_and_real_shifts_do(real_frame: pl.DataFrame) -> None:
    reference = reference_profile(real_frame)
    rng = np.random.default_rng(2026)
    null = [detect(reference, sample(real_frame, rng)) for _ in range(RUNS)]
    assert sum(r.drift for r in null) <= 5, [r.features for r in null if r.drift][:2]
    assert all(r.status == "ok" and r.rows == ROWS for r in null)
    for name, shift in SCENARIOS.items():
        flagged = sum(detect(reference, shift(real_frame, rng)).drift for _ in range(RUNS))
        assert flagged >= 95, f"{name}: only {flagged}/{RUNS} flagged"
    halved = [detect(reference, incomes_halved(real_frame, rng)) for _ in range(RUNS)]
    assert sum(bool(r.programme_change) for r in halved) >= 95 and not any(r.drift for r in halved)


def test_the_shifted_feature_is_the_one_flagged(real_frame: pl.DataFrame) -> None:
    reference = reference_profile(real_frame, version="7")
    rng = np.random.default_rng(5)
    income = detect(reference, incomes_halved(real_frame, rng)).as_dict()
    assert income["reference_version"] == "7" and income["drift"] is False
    assert not any(f["flag"] for f in income["features"].values())
    assert set(income["programme_change"]) == {"household_income", "income_consumption_residues_per_day"}
    assert income["features"]["household_income"]["ks_p"] < CALIBRATION.alpha
    assert income["features"]["household_income"]["kind"] == "programme"
    inputs = [f for f in income["features"].values() if f["kind"] == "input"]
    assert income["score"] == max(f["psi"] for f in inputs)
    size = detect(reference, SCENARIOS["household size +30%"](real_frame, rng)).as_dict()
    assert size["drift"] is True and {n for n, f in size["features"].items() if f["flag"]} == {
        "household_size"
    }
    new = detect(reference, SCENARIOS["a new district"](real_frame, rng)).features["district"]
    assert new["flag"] and new["new"] == ["Kisoro"] and new["missing"] == [] and new["chi2_p"] < 1e-6


def test_small_batches_are_not_tested(real_frame: pl.DataFrame) -> None:
    result = detect(reference_profile(real_frame), real_frame.head(CALIBRATION.min_rows - 1))
    assert (result.drift, result.status, result.score) == (False, "insufficient", 0.0)
    assert result.features["household_size"]["skipped"] == "49 values (need 50)"


def test_holm_adjusts_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


# ---- in the pipeline: reference kept with the model, drift stored per ingestion, the retrain trigger ----------


def _ingest(tmp_path: Path, name: str, frame: pl.DataFrame) -> str:
    from flows.ingest import ingest
    from tasks.ingest.generate import write_households
    from tasks.ingest.landing import land
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    path = tmp_path / f"{name}.csv"
    write_households(frame, path)
    return ingest(land(runtime_for(Settings()), path, source_name=name, door="cli").ingestion_id)[
        "ingestion_id"
    ]


@pytest.mark.usefixtures("prefect_server")
def test_ingestions_are_checked_against_the_champion_and_drift_fires_retrain(
    rtv_env: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.retrain import retrain
    from tasks.ingest.generate import generate_households
    from tasks.model.lifecycle import check_triggers
    from tasks.monitoring import drift
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    with smtp_server() as (port, inbox):
        point_alerts_at(monkeypatch, port)
        rt = runtime_for(Settings())
        _ingest(tmp_path, "train", generate_households(1000, seed=11).frame)
        assert retrain(force=True)["alias"] == "champion"
        reference = rt.registry.reference(rt.registry.version_with("champion"))
        assert reference.height == 1000 and set(reference.columns) == set(drift.contract.MONITORED_COLUMNS)

        steady = _ingest(tmp_path, "steady", generate_households(400, seed=12).frame)
        bigger = _ingest(
            tmp_path,
            "bigger",
            generate_households(400, seed=13).frame.with_columns(
                (pl.col("household_size") * 1.3).round().clip(1, 20).cast(pl.Int64)
            ),
        )
        assert drift.drift_for(rt.catalog, steady)["drift"] is False
        stored = drift.drift_for(rt.catalog, bigger)
        assert stored["drift"] is True and stored["reference_version"] == "1" and stored["rows"] > 350
        assert [n for n, f in stored["features"].items() if f["flag"]] == ["household_size"]
        assert [r["ingestion_id"] for r in drift.latest_drift(rt.catalog, 2)] == [bigger, steady]
        [(subject, body)] = [
            (s, b) for s, b in zip(inbox.subjects(), inbox.bodies(), strict=True) if "Drift" in s
        ]
        assert subject == f"[RTV] Drift in ingestion {bigger}: household_size"
        assert f"psi {stored['features']['household_size']['psi']}" in body and "/model" in body

    result = CliRunner().invoke(app, ["drift", bigger, "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["drift"] is True and printed["score"] == stored["score"]
    assert {"psi", "psi_p", "ks", "ks_p", "flag"} <= set(printed["features"]["household_size"])
    assert {"chi2", "chi2_p", "js", "js_p", "flag"} <= set(printed["features"]["district"])

    check = check_triggers(rt, rt.champion())
    assert "drift" in check.fired and bigger in check.reasons[check.fired.index("drift")]
    weekly = drift.weekly(rt)
    assert weekly is not None and weekly["rows"] == drift.latest_drift(rt.catalog, 1)[0]["rows"]


def test_rtv_drift_of_an_unknown_ingestion_is_a_clear_error(rtv_env: object) -> None:
    result = CliRunner().invoke(app, ["drift", "ing-20261126-000000-nothing"])
    assert result.exit_code == 1 and "no ingestion 'ing-20261126-000000-nothing'" in result.output
