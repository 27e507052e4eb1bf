"""Validation: GX and the row masks agree, every row gets an outcome, real anomalies are quarantined."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tasks.ingest.conform import conform, score_header
from tasks.ingest.generate import FAULT_KINDS, generate_households, to_source_frame
from tasks.ingest.identity import add_identity, drop_duplicates, protect_identifiers
from tasks.ingest.readers import read_table
from tasks.ingest.rules import build_rules
from tasks.ingest.validate import REASONS, Validation, ValidationMismatch, _cross_check, validate
from tasks.protection.protect import Keyring

RULES = build_rules(max_rows=2_000_000, completeness_threshold=0.95, distribution_min_rows=100)
KEYS = Keyring.generate()

EXPECTED_RULE = {
    "sentinel_phones": "phones_owned.range",
    "household_too_large": "household_size.range",
    "land_too_large": "agriculture_land.range",
    "radios_typo": "radios_owned.range",
    "water_instant": "time_to_water.range",
    "opd_zero": "time_to_opd.range",
    "backtick_business": "row.readable",
    "text_in_number": "row.readable",
    "broken_derivation": "derivation.",
    "repeated_household_id": "household_id.repeated",
    "bad_id_format": "household_id.format",
    "cluster_not_in_district": "cluster.in_district",
    "vsla_token": "rule.vsla_profit_not_token",
    "missing_required": "household_size.not_null",
    "no_land_but_crops": "rule.no_land_no_season1_crops",
    "formula_cell": "village.pattern",
}
FIXABLE = {"lowercase_id", "padded_text"}


def run(source_frame: pl.DataFrame, *, typed: bool = False) -> tuple[Validation, int]:
    conformed = conform(source_frame, typed=typed)
    deduplicated = drop_duplicates(add_identity(conformed.frame, KEYS), {})
    validation = validate(
        protect_identifiers(deduplicated.frame, KEYS), RULES, conformed.defects, build_docs=False
    )
    return validation, deduplicated.duplicates


def reasons_by_row(validation: Validation) -> dict[int, set[str]]:
    rows = validation.quarantined.select("_row", pl.col(REASONS).list.eval(pl.element().struct.field("rule")))
    return {r: set(rules) for r, rules in rows.iter_rows()}


@pytest.fixture(scope="module")
def real(real_csv: Path) -> tuple[Validation, pl.DataFrame]:
    table = read_table(real_csv.read_bytes(), score_header=score_header)
    return run(table.frame)[0], table.frame


def test_every_real_row_gets_exactly_one_outcome(real: tuple[Validation, pl.DataFrame]) -> None:
    validation, source = real
    rows = validation.accepted["_row"].to_list() + validation.quarantined["_row"].to_list()
    assert sorted(rows) == list(range(1, source.height + 1))


def test_real_anomalies_are_quarantined_with_reasons(real: tuple[Validation, pl.DataFrame]) -> None:
    validation, source = real
    by_row = reasons_by_row(validation)
    assert validation.rule_rows["household_size.range"] == 1  # HouseholdSize 27
    assert validation.rule_rows["agriculture_land.range"] == 1  # 90 acres
    assert validation.rule_rows["radios_owned.range"] == 1  # 21 radios
    assert validation.rule_rows["time_to_opd.range"] == 34  # 17 at 0 minutes, 17 above 300
    assert validation.rule_rows["household_id.format"] == 4
    assert validation.rule_rows["rule.no_land_no_season1_crops"] == 36
    repeated = source.with_row_index("i", 1).filter(pl.col("HouseHoldID").str.to_uppercase().is_duplicated())
    assert validation.rule_rows["household_id.repeated"] == repeated.height == 89
    assert all("household_id.repeated" in by_row[i] for i in repeated["i"].to_list())

    phones = source.with_row_index("i", 1).filter(pl.col("phones_owned") == "-99")["i"].item()
    reason = validation.quarantined.filter(pl.col("_row") == phones)[REASONS].item().to_list()
    assert {
        "rule": "phones_owned.range",
        "expectation": "ExpectColumnValuesToBeBetween",
        "column": "phones_owned",
        "value": "-99",
    } in reason
    backtick = source.with_row_index("i", 1).filter(pl.col("business_number") == "`")["i"].item()
    reason = validation.quarantined.filter(pl.col("_row") == backtick)[REASONS].item().to_list()
    assert {
        "rule": "row.readable",
        "expectation": "ExpectColumnValuesToBeInSet",
        "column": "business_count",
        "value": "`",
    } in reason


def test_no_identifier_reaches_the_validation_outputs(real: tuple[Validation, pl.DataFrame]) -> None:
    validation, source = real
    text = str(validation.quarantined.to_dicts()) + str(validation.accepted.head(200).to_dicts())
    for household_id in source["HouseHoldID"].head(300).to_list():
        assert household_id not in text and household_id.upper() not in text


def test_each_injected_fault_is_caught_by_its_rule() -> None:
    batch = generate_households(3000, seed=11, bad_rate=0.2)
    validation, _ = run(to_source_frame(batch.frame))
    by_row = reasons_by_row(validation)
    seen = Counter()
    for index, kind in batch.faults.items():
        row = index + 1
        if kind in FIXABLE:
            assert row not in by_row, (kind, by_row.get(row))
            continue
        assert row in by_row, kind
        assert any(r.startswith(EXPECTED_RULE[kind]) for r in by_row[row]), (kind, by_row[row])
        seen[kind] += 1
    assert set(seen) | FIXABLE == set(FAULT_KINDS)
    clean = set(range(1, 3001)) - {i + 1 for i in batch.faults}
    copied = {r for r, rules in by_row.items() if rules == {"household_id.repeated"}}
    assert not (set(by_row) & clean) - copied  # only the originals of copied ids are held besides faulty rows


def test_clean_batch_passes_and_batch_checks_hold() -> None:
    validation, duplicates = run(to_source_frame(generate_households(2000, seed=3).frame))
    assert validation.quarantined.height == 0 and validation.accepted.height == 2000 and duplicates == 0
    assert all(check["passed"] for check in validation.batch_checks.values()), validation.batch_checks


def test_exact_repeats_within_a_batch_are_duplicates_not_quarantine() -> None:
    frame = to_source_frame(generate_households(50, seed=5, with_metadata=False).frame)
    validation, duplicates = run(pl.concat([frame, frame.head(7)]))
    assert duplicates == 7 and validation.accepted.height == 50 and validation.quarantined.height == 0


def test_engines_disagreeing_is_an_error() -> None:
    from tasks.ingest.expectations import SuiteResult

    with pytest.raises(ValidationMismatch, match="household_size.range: masks 2, GX 1"):
        _cross_check({"household_size.range": 2}, SuiteResult(unexpected={"household_size.range": 1}))
