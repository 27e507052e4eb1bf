"""Survey rounds: label checks, calendar periods in UTC, and the per-row order declared → submitted_at → landing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from tasks.ingest.report import ImportReport
from tasks.ingest.rounds import (
    CALENDARS,
    ROUND_COLUMN,
    BadRoundLabel,
    RoundCalendar,
    assign_rounds,
    optional_round,
    round_counts,
    round_of,
    validate_round,
)
from tasks.platform.errors import BadInput
from tasks.platform.settings import Settings

KAMPALA = timezone(timedelta(hours=3))
LANDED = datetime(2024, 2, 10, 8, 0, tzinfo=UTC)  # 2024-Q1 / 2024-02 / 2024-H1 / 2024


@pytest.mark.parametrize("label", ["2025-baseline", "2026-Q2", "R1", "a", "x" * 40, "2025.follow_up-2"])
def test_valid_labels_pass_unchanged(label: str) -> None:
    assert validate_round(label) == label


@pytest.mark.parametrize(
    "label", ["", "bad/label", "-lead", ".dot", "x" * 41, "round one", "2025-Q3\n", "é-round", "a;drop"]
)
def test_invalid_labels_are_refused_with_one_line_that_does_not_echo_them(label: str) -> None:
    with pytest.raises(BadRoundLabel) as refused:
        validate_round(label)
    message = str(refused.value)
    assert message.startswith("not a valid survey round:") and "\n" not in message
    assert isinstance(refused.value, BadInput) and isinstance(refused.value, ValueError)
    assert label not in message or label == ""


def test_blank_declares_no_round() -> None:
    assert optional_round(None) is None and optional_round("  ") is None
    assert optional_round("2026-Q2") == "2026-Q2"
    with pytest.raises(BadRoundLabel):
        optional_round("bad/label")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 1, 1, tzinfo=UTC), {"quarter": "2025-Q1", "month": "2025-01", "half": "2025-H1", "year": "2025"}),
        (datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC), {"quarter": "2025-Q1", "month": "2025-03", "half": "2025-H1", "year": "2025"}),
        (datetime(2025, 4, 1, tzinfo=UTC), {"quarter": "2025-Q2", "month": "2025-04", "half": "2025-H1", "year": "2025"}),
        (datetime(2025, 6, 30, 23, 59, tzinfo=UTC), {"quarter": "2025-Q2", "month": "2025-06", "half": "2025-H1", "year": "2025"}),
        (datetime(2025, 7, 1, tzinfo=UTC), {"quarter": "2025-Q3", "month": "2025-07", "half": "2025-H2", "year": "2025"}),
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), {"quarter": "2025-Q4", "month": "2025-12", "half": "2025-H2", "year": "2025"}),
        (datetime(2026, 1, 1, tzinfo=UTC), {"quarter": "2026-Q1", "month": "2026-01", "half": "2026-H1", "year": "2026"}),
    ],
)  # fmt: skip
def test_each_calendar_and_its_edges(moment: datetime, expected: dict[str, str]) -> None:
    assert {c: round_of(moment, c) for c in CALENDARS} == expected


def test_rounds_are_taken_in_utc_not_kampala_time() -> None:
    # 1 January 01:30 in Kampala is still 31 December in UTC: the previous year's last quarter
    new_year_in_kampala = datetime(2026, 1, 1, 1, 30, tzinfo=KAMPALA)
    assert round_of(new_year_in_kampala, "quarter") == "2025-Q4"
    assert round_of(new_year_in_kampala, "year") == "2025"
    assert round_of(datetime(2025, 12, 31, 22, 0), "year") == "2025"  # naive: taken as UTC
    assert round_of(datetime(2025, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-5))), "year") == "2026"


def test_unknown_calendar_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown round calendar"):
        round_of(LANDED, "week")  # type: ignore[arg-type]


def test_settings_default_to_quarters_and_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTV_ROUND_CALENDAR", raising=False)
    assert Settings().round_calendar == "quarter"
    monkeypatch.setenv("RTV_ROUND_CALENDAR", "half")
    assert Settings().round_calendar == "half"
    monkeypatch.setenv("RTV_ROUND_CALENDAR", "week")
    with pytest.raises(ValueError, match="round_calendar"):
        Settings()


SUBMITTED = [
    "2025-07-01",  # date only
    "2025-09-30T23:59:59",  # naive: UTC
    "2025-10-01 00:00:00",  # space separator
    "2026-01-01T01:30:00+03:00",  # Kampala time: 2025-12-31 22:30 UTC
    "2025-12-31T22:30:00-0500",  # offset without colon: 2026-01-01 03:30 UTC
    "2025-04-15T10:00:00.250Z",  # fraction and Z
    "2025-04-15T10:00Z",  # minutes and Z
    "not a date",  # unparseable: landing time
    "2025-02-30",  # impossible date: landing time
    None,  # missing: landing time
]


@pytest.mark.parametrize(
    ("calendar", "expected"),
    [
        ("quarter", ["2025-Q3", "2025-Q3", "2025-Q4", "2025-Q4", "2026-Q1", "2025-Q2", "2025-Q2", "2024-Q1", "2024-Q1", "2024-Q1"]),
        ("month", ["2025-07", "2025-09", "2025-10", "2025-12", "2026-01", "2025-04", "2025-04", "2024-02", "2024-02", "2024-02"]),
        ("half", ["2025-H2", "2025-H2", "2025-H2", "2025-H2", "2026-H1", "2025-H1", "2025-H1", "2024-H1", "2024-H1", "2024-H1"]),
        ("year", ["2025", "2025", "2025", "2025", "2026", "2025", "2025", "2024", "2024", "2024"]),
    ],
)  # fmt: skip
def test_rows_take_their_submitted_at_else_the_landing_time(
    calendar: RoundCalendar, expected: list[str]
) -> None:
    frame = pl.DataFrame({"submitted_at": SUBMITTED}, schema={"submitted_at": pl.String})
    rounds = assign_rounds(frame, declared=None, landed_at=LANDED, calendar=calendar)
    assert rounds[ROUND_COLUMN].to_list() == expected
    assert rounds.columns == ["submitted_at", ROUND_COLUMN] and rounds[ROUND_COLUMN].dtype == pl.String
    # the frame expression and the scalar function agree on every parseable instant
    assert rounds[ROUND_COLUMN][3] == round_of(datetime(2026, 1, 1, 1, 30, tzinfo=KAMPALA), calendar)


def test_a_declared_round_wins_over_every_date() -> None:
    frame = pl.DataFrame({"submitted_at": SUBMITTED}, schema={"submitted_at": pl.String})
    rounds = assign_rounds(frame, declared="2025-baseline", landed_at=LANDED, calendar="month")
    assert rounds[ROUND_COLUMN].to_list() == ["2025-baseline"] * len(SUBMITTED)


def test_a_bad_declared_round_is_refused_at_assignment_too() -> None:
    with pytest.raises(BadRoundLabel):
        assign_rounds(pl.DataFrame({"a": [1]}), declared="bad/label", landed_at=LANDED, calendar="quarter")


def test_no_submitted_at_column_or_no_rows() -> None:
    frame = pl.DataFrame({"household_id": ["KAN-1", "KAN-2"]})
    naive_landing = datetime(2025, 8, 3, 12, 0)  # SQLite hands received_at back naive, in UTC
    rounds = assign_rounds(frame, declared=None, landed_at=naive_landing, calendar="quarter")
    assert rounds[ROUND_COLUMN].to_list() == ["2025-Q3", "2025-Q3"]
    empty = assign_rounds(
        pl.DataFrame(schema={"submitted_at": pl.String}), declared=None, landed_at=LANDED, calendar="quarter"
    )
    assert empty.height == 0 and empty.schema[ROUND_COLUMN] == pl.String


def test_round_counts_per_label() -> None:
    frame = pl.DataFrame({ROUND_COLUMN: ["2025-Q4", "2025-Q3", "2025-Q4"]})
    assert round_counts(frame) == {"2025-Q3": 1, "2025-Q4": 2}
    assert round_counts(frame.clear()) == {} and round_counts(pl.DataFrame({"x": [1]})) == {}


def test_the_report_states_its_rounds() -> None:
    report = ImportReport(
        ingestion_id="ing-1",
        status="completed_with_quarantine",
        source="s",
        sha256="0" * 64,
        rows_received=5,
        rows_accepted=4,
        rows_quarantined=1,
        rounds={"2025-Q3": 3, "2025-Q4": 1},
        rounds_quarantined={"2025-Q4": 1},
    )
    text = report.to_markdown()
    assert "## Survey rounds" in text and "from each row's submitted_at" in text
    assert "| 2025-Q3 | 3 | 0 |" in text and "| 2025-Q4 | 1 | 1 |" in text
    declared = report.model_copy(
        update={"rounds": {"R1": 4}, "rounds_quarantined": {}, "declared_round": "R1"}
    )
    assert "declared at landing as `R1`" in declared.to_markdown()
    assert (
        "Survey rounds"
        not in report.model_copy(update={"rounds": {}, "rounds_quarantined": {}}).to_markdown()
    )


def test_predictions_keep_the_round_of_each_processed_row() -> None:
    from tasks.ingest import contract
    from tasks.ingest.features import add_features
    from tasks.ingest.generate import generate_households
    from tasks.model.estimator import VulnerabilityModel, design_matrix
    from tasks.model.predictions import PREDICTION_COLUMNS, score_households

    frame = add_features(generate_households(120, seed=9).frame).with_columns(
        pl.lit("ing-x").alias("ingestion_id"),
        pl.int_range(1, 121).alias("source_row"),
        pl.col("household_id").alias("household_pseudonym"),
        pl.Series(ROUND_COLUMN, ["2025-Q3", "2025-Q4"] * 60),
    )
    model = VulnerabilityModel(max_iter=10, min_samples_leaf=10).fit(
        design_matrix(frame), frame[contract.TARGET].to_numpy()
    )
    scored = score_households(model, frame, model_name="m", model_version="1", cutoffs=(0.3, 0.6, 0.8))
    assert PREDICTION_COLUMNS.count(ROUND_COLUMN) == 1 and tuple(scored.columns) == PREDICTION_COLUMNS
    assert scored[ROUND_COLUMN].to_list() == frame[ROUND_COLUMN].to_list()
    # objects written before rounds existed are scored too (backfill), with no round
    older = score_households(
        model, frame.drop(ROUND_COLUMN), model_name="m", model_version="1", cutoffs=(0.3, 0.6, 0.8)
    )
    assert older[ROUND_COLUMN].null_count() == 120 and older[ROUND_COLUMN].dtype == pl.String
    empty = score_households(model, frame.clear(), model_name="m", model_version="1", cutoffs=(0.3, 0.6, 0.8))
    assert tuple(empty.columns) == PREDICTION_COLUMNS
