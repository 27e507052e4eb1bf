"""Survey rounds: the campaign label of every row, declared at landing or read from its dates on a calendar.

A round is decided in this order: the label a door declared when it landed the file; else the calendar
period of the row's `submitted_at`; else the calendar period of the ingestion's landing time. Calendar
periods are taken in UTC, not in Africa/Kampala time: every instant in the pipeline is stored in UTC, so a
row's round never depends on the zone of a machine or a device. So a survey sent in the first three hours of
a quarter in Kampala (UTC+3), e.g. 1 July 01:00 local, still belongs to the previous quarter (2025-Q2).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final, Literal, get_args

import polars as pl

from tasks.platform.errors import BadInput

RoundCalendar = Literal["quarter", "month", "half", "year"]
CALENDARS: Final[tuple[RoundCalendar, ...]] = get_args(RoundCalendar)
ROUND_COLUMN: Final = "survey_round"
ROUND_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"
ROUND_LABEL: Final = re.compile(ROUND_PATTERN)
ROUND_RULE: Final = (
    "not a valid survey round: use 1 to 40 letters, digits, dots, dashes or underscores, starting with a "
    "letter or digit (e.g. 2025-baseline, 2026-Q2)"
)

# The shapes the contract's submitted_at pattern admits, once a trailing Z is written as +00:00 and a space
# between date and time as T; chrono's %.f also takes no fraction, and %z takes +03:00 and +0300.
_AWARE_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


class BadRoundLabel(BadInput, ValueError):
    """A declared survey round is not a label the pipeline accepts; nothing was landed."""


def validate_round(label: str) -> str:
    """The label unchanged when it is a valid round label; BadRoundLabel with a one-line reason otherwise.

    The reason never repeats the label: the API answers it and never echoes a submitted value.
    """
    if not ROUND_LABEL.fullmatch(label):
        raise BadRoundLabel(ROUND_RULE)
    return label


def optional_round(label: str | None) -> str | None:
    """None for no declaration (None or blank), else the validated label (BadRoundLabel when invalid)."""
    if label is None or not label.strip():
        return None
    return validate_round(label)


def round_of(moment: datetime, calendar: RoundCalendar) -> str:
    """The calendar round of an instant in UTC (a naive datetime is taken as UTC): 2025-Q3, 2025-07, 2025-H2, 2025."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    year = f"{utc.year:04d}"
    if calendar == "quarter":
        return f"{year}-Q{(utc.month - 1) // 3 + 1}"
    if calendar == "month":
        return f"{year}-{utc.month:02d}"
    if calendar == "half":
        return f"{year}-H{1 if utc.month <= 6 else 2}"
    if calendar == "year":
        return year
    raise ValueError(f"unknown round calendar {calendar!r}; one of {', '.join(CALENDARS)}")


def submitted_instant(column: str = "submitted_at") -> pl.Expr:
    """The text column parsed to a UTC instant (naive times taken as UTC); null when absent or unparseable."""
    text = (
        pl.col(column)
        .cast(pl.String)
        .str.strip_chars()
        .str.replace(r"[Zz]$", "+00:00")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
    )
    aware = [text.str.strptime(pl.Datetime("us", "UTC"), f, strict=False) for f in _AWARE_FORMATS]
    naive = [
        text.str.strptime(pl.Datetime("us"), f, strict=False).dt.replace_time_zone("UTC")
        for f in _NAIVE_FORMATS
    ]
    return pl.coalesce(*aware, *naive)


def round_label_expr(instant: pl.Expr, calendar: RoundCalendar) -> pl.Expr:
    """The calendar round of a UTC datetime expression, the same labels as `round_of`; null stays null."""
    year = instant.dt.year().cast(pl.String).str.zfill(4)
    month = instant.dt.month()
    if calendar == "quarter":
        return year + "-Q" + instant.dt.quarter().cast(pl.String)
    if calendar == "month":
        return year + "-" + month.cast(pl.String).str.zfill(2)
    if calendar == "half":
        return year + pl.when(month <= 6).then(pl.lit("-H1")).otherwise(pl.lit("-H2"))
    if calendar == "year":
        return year
    raise ValueError(f"unknown round calendar {calendar!r}; one of {', '.join(CALENDARS)}")


def round_expr(
    declared: str | None, landed_at: datetime, calendar: RoundCalendar, *, columns: tuple[str, ...]
) -> pl.Expr:
    """Every row's round: the declared label, else its submitted_at's period, else the landing time's period."""
    if declared is not None:
        return pl.lit(validate_round(declared), dtype=pl.String).alias(ROUND_COLUMN)
    fallback = pl.lit(round_of(landed_at, calendar), dtype=pl.String)
    if "submitted_at" not in columns:
        return fallback.alias(ROUND_COLUMN)
    return pl.coalesce(round_label_expr(submitted_instant(), calendar), fallback).alias(ROUND_COLUMN)


def assign_rounds(
    frame: pl.DataFrame, *, declared: str | None, landed_at: datetime, calendar: RoundCalendar
) -> pl.DataFrame:
    """The frame with a `survey_round` column (declared → submitted_at → landing time, on the calendar in UTC)."""
    return frame.with_columns(round_expr(declared, landed_at, calendar, columns=tuple(frame.columns)))


def round_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Rows per survey round, sorted by label (empty when the frame has no rows or no round column)."""
    if frame.height == 0 or ROUND_COLUMN not in frame.columns:
        return {}
    counted = frame.group_by(ROUND_COLUMN).len().sort(ROUND_COLUMN)
    return {str(label): int(n) for label, n in counted.iter_rows()}
