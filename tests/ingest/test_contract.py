"""The contract matches the real file and is internally consistent."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl
import pytest

from tasks.ingest import contract
from tasks.ingest.contract import Role


def test_contract_lists_the_75_source_columns_in_file_order(real_csv: Path) -> None:
    with real_csv.open(newline="") as handle:
        header = next(csv.reader(handle))
    seen: dict[str, int] = {}
    pandas_names = []
    for name in header:
        pandas_names.append(f"{name}.{seen[name]}" if name in seen else name)
        seen[name] = seen.get(name, 0) + 1
    assert [c.source for c in contract.COLUMNS] == pandas_names
    assert len(contract.COLUMNS) == 75


def test_canonical_names_are_unique_snake_case() -> None:
    names = [c.name for c in contract.ALL_COLUMNS]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)


def test_quirky_spellings_resolve() -> None:
    aliases = contract.header_aliases()
    assert (
        aliases["Season2VegatableIncome"] == aliases["Season2VegetableIncome"] == "season2_vegetable_income"
    )
    assert aliases["HouseholdIcome"] == "household_income"
    assert aliases["VSLA_Profits"] == "vsla_profits_ugx" and aliases["VSLA_Profits.1"] == "vsla_profits_usd"
    assert aliases["Assets"] == "assets_ugx" and aliases["Assets.1"] == "assets_usd"
    assert aliases["meta/instanceID"] == "instance_id" and aliases["SubmissionDate"] == "submitted_at"


def test_every_derivation_holds_on_the_real_file(real_csv: Path) -> None:
    frame = pl.read_csv(real_csv, infer_schema_length=None)
    frame.columns = [c.name for c in contract.COLUMNS]
    for d in contract.DERIVATIONS:
        expected = sum(frame[t] * k for t, k in d.terms)
        error = (frame[d.target] - expected).abs()
        allowed = d.abs_tolerance + d.rel_tolerance * expected.abs()
        assert (error > allowed).sum() == 0, d.target


def test_pii_and_roles() -> None:
    assert contract.PII_COLUMNS == ("household_id", "officer_id", "device_id")
    assert contract.column(contract.TARGET).has(Role.TARGET)
    assert "district" in contract.GEO_COLUMNS and "village" in contract.GEO_COLUMNS


def test_target_closure_covers_every_money_term_and_vegetable_column() -> None:
    leaky = contract.target_closure()
    for name in (
        "household_income",
        "consumption_residues",
        "agric_value",
        "seasonal_crop_income",
        "livestock_consumed_value",
        "household_income_per_day",
        "consumption_per_day",
        "income_consumption_assets_residues",
        "vegetable_income",
        "season2_vegetable_value",
        "formal_employment_income",
        "rent_income",
    ):
        assert name in leaky, name
    for allowed in ("livestock_asset_value", "vsla_profits_ugx", "household_size", "district"):
        assert allowed not in leaky
    assert not set(contract.model_input_columns()) & leaky


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (2.15, "On Track"),
        (2.1499, "At Risk"),
        (1.77, "At Risk"),
        (1.7699, "Struggling"),
        (1.25, "Struggling"),
        (1.2499, "Severely Struggling"),
        (0.0, "Severely Struggling"),
        (None, None),
    ],
)
def test_progress_status_thresholds_use_greater_or_equal(value: float | None, status: str | None) -> None:
    frame = pl.DataFrame({"t": [value]}, schema={"t": pl.Float64})
    assert frame.select(contract.progress_status_expr(pl.col("t"))).item() == status
