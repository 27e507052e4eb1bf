"""Conform: names and types from the contract, only unambiguous fixes, each one counted."""

from __future__ import annotations

import polars as pl
import pytest

from tasks.ingest import contract
from tasks.ingest.conform import NotASurveyTable, conform, map_headers, resolve_header
from tasks.ingest.generate import generate_households, to_source_frame


@pytest.fixture(scope="module")
def source() -> pl.DataFrame:
    """Ten clean households with the real headers, every value as text (as a CSV reader gives them)."""
    frame = to_source_frame(generate_households(10, seed=2).frame)
    return frame.with_columns(pl.all().cast(pl.String))


@pytest.mark.parametrize(
    ("header", "name", "fix"),
    [
        ("HouseholdSize", "household_size", None),
        (" HouseholdSize ", "household_size", "header_whitespace"),
        ("householdsize", "household_size", "header_case"),
        ("household/HouseholdSize", "household_size", None),
        ("grp_a/grp_b/HHIncome+Consumption+Residues/Day", contract.TARGET, None),
        ("survey-Season2VegetableIncome", "season2_vegetable_income", None),
        ("meta/instanceID", "instance_id", None),
        ("meta-instanceID", "instance_id", None),
        ("_submission_time", "submitted_at", None),
        ("VSLA_Profits.1", "vsla_profits_usd", None),
        ("Comments", None, None),
    ],
)
def test_headers_resolve_to_canonical_names(header: str, name: str | None, fix: str | None) -> None:
    assert resolve_header(header) == (name, fix)


def test_repeated_headers_without_suffix_map_to_the_second_copy() -> None:
    headers = ["savings/VSLA_Profits", "usd/VSLA_Profits", "stock/Assets", "usd/Assets", "extra/Assets"]
    mapping, _, unknown = map_headers(headers)
    assert list(mapping.values()) == ["vsla_profits_ugx", "vsla_profits_usd", "assets_ugx", "assets_usd"]
    assert unknown == ["extra/Assets"]


def test_clean_text_source_conforms_with_no_fixes(source: pl.DataFrame) -> None:
    result = conform(source, typed=False)
    assert result.fixes == {} and result.unknown_columns == [] and result.missing_columns == []
    assert result.frame.columns[:2] == ["_row", "district"]
    assert result.frame.schema["household_size"] == pl.Int64 and result.frame.schema["composts"] == pl.Float64
    assert result.defects.height == 0 and not result.frame["_defective"].any()


def test_unambiguous_fixes_are_applied_and_counted(source: pl.DataFrame) -> None:
    messy = source.rename({"HouseholdSize": " HouseholdSize", "District": "DISTRICT"}).with_columns(
        pl.Series(" HouseholdSize", [" 4", *source["HouseholdSize"][1:].to_list()]),
        pl.Series("DISTRICT", ["kanungu ", *source["District"][1:].to_list()]),
        pl.Series("HouseHoldID", [source["HouseHoldID"][0].lower(), *source["HouseHoldID"][1:].to_list()]),
    )
    result = conform(messy, typed=False)
    assert result.fixes == {
        "header_whitespace": 1,
        "header_case": 1,
        "value_whitespace": 2,
        "value_case": 1,
        "household_id_case": 1,
    }
    first = result.frame.row(0, named=True)
    assert first["household_size"] == 4 and first["district"] == "Kanungu"
    assert first["household_id"] == source["HouseHoldID"][0].upper()


def test_numbers_as_text_in_typed_sources_are_counted(source: pl.DataFrame) -> None:
    typed = source.with_columns(pl.col(c).cast(pl.Float64) for c in ("TimeToOPD", "TimeToWater"))
    result = conform(typed, typed=True)
    assert result.fixes["number_as_text"] > 0
    assert conform(source, typed=False).fixes.get("number_as_text") is None


def test_unparseable_cells_become_defects_with_their_raw_text(source: pl.DataFrame) -> None:
    broken = source.with_columns(
        pl.Series("phones_owned", ["about two", *source["phones_owned"][1:].to_list()]),
        pl.Series("HouseholdSize", ["3.5", "NA", *source["HouseholdSize"][2:].to_list()]),
        pl.Series("radios_owned", ["inf", *source["radios_owned"][1:].to_list()]),
    )
    result = conform(broken, typed=False)
    first = result.frame.row(0, named=True)
    assert first["phones_owned"] is None and first["household_size"] is None and first["radios_owned"] is None
    assert first["_defective"] and not result.frame.row(1, named=True)["_defective"]
    assert result.defects["_row"].to_list() == [1]
    assert sorted(result.defects["_defects"][0], key=lambda d: d["column"]) == [
        {"column": "household_size", "value": "3.5"},
        {"column": "phones_owned", "value": "about two"},
        {"column": "radios_owned", "value": "inf"},
    ]
    assert result.frame.row(1, named=True)["household_size"] is None  # "NA" is a missing value, not a defect


def test_ragged_rows_from_the_reader_become_defects(source: pl.DataFrame) -> None:
    ragged = source.with_columns(pl.Series("_row_defect", [None] * 9 + ["77 fields, header has 75"]))
    result = conform(ragged, typed=False)
    assert result.frame["_defective"].to_list() == [False] * 9 + [True]
    assert result.defects.to_dicts() == [
        {"_row": 10, "_defects": [{"column": "row", "value": "77 fields, header has 75"}]}
    ]


def test_absent_derived_columns_are_computed(source: pl.DataFrame) -> None:
    result = conform(source.drop("VegetableIncome", "HHIncome/Day"), typed=False)
    assert set(result.computed_columns) == {"vegetable_income", "household_income_per_day"}
    assert result.fixes["derived_computed"] == 20
    original = conform(source, typed=False).frame
    assert result.frame["vegetable_income"].to_list() == pytest.approx(original["vegetable_income"].to_list())


def test_a_foreign_table_is_not_a_survey() -> None:
    with pytest.raises(NotASurveyTable, match="not an RTV household survey table"):
        conform(pl.DataFrame({"name": ["a"], "phone": ["b"]}), typed=False)


def test_missing_required_column_is_kept_as_nulls(source: pl.DataFrame) -> None:
    result = conform(source.drop("HouseholdSize"), typed=False)
    assert result.missing_columns == ["household_size"]
    assert result.frame["household_size"].null_count() == 10
