"""The model reads only what is cheap to observe, and predicts sensible values."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tasks.ingest import contract
from tasks.ingest.features import add_features
from tasks.ingest.generate import generate_households
from tasks.model.estimator import (
    CATEGORIES,
    VulnerabilityModel,
    design_matrix,
    input_columns,
    source_features,
)
from tasks.model.predictions import RISK_BANDS, risk_band, score_households

# Every money column the target is summed from, every total and per-day figure, and the vegetable, crop,
# agricultural and livestock incomes and values: none may feed the model.
FORBIDDEN = {
    "HHIncome+Consumption+Residues/Day",
    "HHIncome+Consumption+Assets+Residues/Day",
    "HHIncome/Day",
    "Consumption/Day",
    "HouseholdIcome",
    "Consumption+Residues",
    "HHIncome+Consumption+Residues",
    "HHIncome+Consumption+Assets+Residues",
    "FormalEmployment",
    "PersonalBusinessAndSelfEmployment",
    "CasualLabour",
    "RemittancesAndGifts",
    "RentIncome",
    "Season1CropIncome",
    "Season2CropIncome",
    "SeasonalCropIncome",
    "PerenialCropIncome",
    "LivestockIncome",
    "Season1AgricValue",
    "Season2AgricValue",
    "SeasonalAgricValue",
    "PerennialAgricValue",
    "AgricValue",
    "LivestockIncomeConsumed",
    "Season1VegetableIncome",
    "Season2VegatableIncome",
    "VegetableIncome",
    "Season1VegetableValue",
    "Season2VegetableValue",
    "SeasonalVegetableValue",
}


def test_no_forbidden_column_feeds_the_model() -> None:
    assert not set(source_features()) & FORBIDDEN
    assert {contract.source_name(c) for c in contract.target_closure()} == FORBIDDEN
    assert "LivestockAssetValue" in source_features() and "VSLA_Profits" in source_features()


def test_design_matrix_is_numeric_and_stable() -> None:
    frame = add_features(generate_households(50, seed=1).frame)
    X = design_matrix(frame)
    assert X.shape[0] == 50 and all(dtype.kind == "f" for dtype in X.dtypes)
    assert "loan_sources=7" in X.columns and "district" in X.columns
    assert not ({c for c in X.columns} & set(contract.target_closure()))
    odd = frame.with_columns(pl.lit("Kampala").alias("district"))
    assert design_matrix(odd)["district"].isna().all()  # unknown category: missing, not a new code
    assert list(design_matrix(frame.head(5)).columns) == list(X.columns)
    assert set(CATEGORIES["district"]) == set(contract.DISTRICT_CLUSTERS)


def test_model_learns_and_predicts_valid_outputs() -> None:
    frame = add_features(generate_households(1500, seed=4).frame)
    X, y = design_matrix(frame), frame[contract.TARGET].to_numpy()
    model = VulnerabilityModel().fit(X, y)
    p, expected, status = model.estimate(X)
    assert ((p >= 0) & (p <= 1)).all() and (expected > 0).all()
    assert set(status) <= set(contract.PROGRESS_STATUSES)
    truth = y < 1.77
    assert p[truth].mean() > p[~truth].mean() + 0.2  # it separates the vulnerable from the rest


def test_risk_bands_follow_the_cutoffs() -> None:
    p = np.array([0.0, 0.3, 0.31, 0.6, 0.61, 0.8, 0.81, 1.0])
    assert list(risk_band(p, (0.3, 0.6, 0.8))) == [
        "Low",
        "Low",
        "Medium",
        "Medium",
        "High",
        "High",
        "Critical",
        "Critical",
    ]
    assert RISK_BANDS == ("Low", "Medium", "High", "Critical")


def test_scores_carry_the_model_version_and_observed_status() -> None:
    frame = add_features(generate_households(300, seed=6).frame).with_columns(
        pl.lit("ing-x").alias("ingestion_id"),
        pl.int_range(1, 301).alias("source_row"),
        pl.col("household_id").alias("household_pseudonym"),
    )
    model = VulnerabilityModel().fit(design_matrix(frame), frame[contract.TARGET].to_numpy())
    scored = score_households(
        model, frame, model_name="household-vulnerability", model_version="7", cutoffs=(0.3, 0.6, 0.8)
    )
    assert scored.height == 300 and set(scored["model_version"]) == {"7"}
    assert scored["observed_status"].to_list() == frame["progress_status"].to_list()


@pytest.mark.parametrize("column", input_columns())
def test_every_input_column_is_a_contract_model_input(column: str) -> None:
    assert contract.column(column).has(contract.Role.MODEL)


def test_every_visit_of_a_household_stays_on_one_side_of_every_split() -> None:
    from tasks.model.evaluation import cv_splits, evaluate, holdout_rows, is_holdout

    first = add_features(generate_households(600, seed=11).frame).with_columns(
        pl.col("household_id").alias("household_pseudonym"), pl.lit("2025-Q1").alias("survey_round")
    )
    places = first.select("district", "cluster", "village").unique(maintain_order=True)
    held_place = places.filter(is_holdout(places["village"]))
    kept_place = places.filter(~is_holdout(places["village"]))
    # 200 households come back in a second round; every one of them in a village on the other side of the
    # held-out split from its first, so a split by the row's own village would put it on both sides
    back = first.head(200)
    moved = pl.concat(
        [
            row.drop("district", "cluster", "village").hstack(
                (kept_place if is_holdout(row["village"])[0] else held_place)[i % 7 : i % 7 + 1]
            )
            for i, row in enumerate(back.iter_slices(1))
        ],
        how="vertical_relaxed",
    ).with_columns(pl.lit("2026-Q1").alias("survey_round"), pl.col(contract.TARGET) * 1.1)
    frame = pl.concat([first, moved.select(first.columns)], how="vertical_relaxed").with_columns(
        # what labelled_snapshot adds from the registry: where each household was first seen
        pl.col(c).first().over("household_pseudonym").alias(f"first_{c}")
        for c in ("district", "cluster", "village")
    )
    assert frame.height == 800 and frame["household_pseudonym"].n_unique() == 600
    assert (frame["village"] != frame["first_village"]).sum() == 200

    held = holdout_rows(frame)
    inside, outside = frame.filter(held), frame.filter(~held)
    assert inside.height and outside.height
    assert not set(inside["household_pseudonym"]) & set(outside["household_pseudonym"])
    statuses = contract.progress_status_labels(outside[contract.TARGET].to_numpy())
    folds = list(cv_splits(outside, statuses))
    assert len(folds) == 5
    for fit, validate in folds:
        fitted = set(outside["household_pseudonym"].gather(fit))
        assert not fitted & set(outside["household_pseudonym"].gather(validate))

    _, evaluation = evaluate(frame, {"max_iter": 5})  # a few trees: only the split sizes are checked
    assert evaluation.n_train == outside.height and evaluation.n_holdout == inside.height
    # without the first-place columns, the split falls back to each row's own village (and would leak here)
    own = holdout_rows(frame.drop("first_district", "first_cluster", "first_village"))
    assert (own != held).sum() == 200
