"""Give every row an outcome: accepted, or quarantined with machine-readable reasons (rule, column, value)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import polars as pl

from tasks.ingest import contract
from tasks.ingest.conform import DEFECTS, DEFECTS_SCHEMA, ROW
from tasks.ingest.expectations import SuiteResult, run_suite
from tasks.ingest.rules import CONFLICT, DEFECTIVE, REPEATED_IN_ROUND, VULNERABLE, RuleSet

REASONS = "quarantine_reasons"
REASON_DTYPE = pl.List(
    pl.Struct({"rule": pl.String, "expectation": pl.String, "column": pl.String, "value": pl.String})
)
_IDX = "_idx"
HELD = "_held"


class RuleOutcomeRow(TypedDict):
    """How many rows of a batch one row rule failed: a rule_outcomes row of the catalog."""

    rule: str
    expectation: str
    column: str | None
    unexpected_count: int
    element_count: int


class ValidationMismatch(RuntimeError):
    """GX and the row masks disagree on a rule: the rule set has a bug; no outcome is trusted."""


@dataclass
class Validation:
    """Outcome of validating a batch: every row with its `_held` flag, and the reasons of the held ones.

    Accepted and quarantined rows are cut out per partition (`split`) rather than copied whole: at a
    million rows each copy costs about a gigabyte.
    """

    rows: pl.DataFrame
    reasons: pl.DataFrame
    rule_rows: dict[str, int] = field(default_factory=dict)
    batch_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: list[RuleOutcomeRow] = field(default_factory=list)
    docs_dir: Path | None = None

    @property
    def quarantined_count(self) -> int:
        return self.reasons.height

    @property
    def accepted_count(self) -> int:
        return self.rows.height - self.reasons.height

    def split(self, start: int = 0, size: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Accepted rows and quarantined rows (with their reasons) of a slice of the batch."""
        part = self.rows.slice(start, size)
        accepted = part.filter(~pl.col(HELD)).drop(_IDX, HELD)
        quarantined = (
            part.filter(pl.col(HELD))
            .join(self.reasons, on=_IDX, how="left", maintain_order="left")
            .drop(_IDX, HELD)
        )
        return accepted, quarantined

    @property
    def accepted(self) -> pl.DataFrame:
        return self.split()[0]

    @property
    def quarantined(self) -> pl.DataFrame:
        return self.split()[1]


def gx_frame(frame: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """The columns GX sees: no identifiers or tokens, defects as a column list, the vulnerability flag."""
    keep = [
        c
        for c in frame.columns
        if not c.endswith("_enc")
        and not c.startswith("_")
        and c not in ("officer_pseudonym", "device_pseudonym", "pii_key")
    ]
    return frame.select(
        *keep,
        pl.col(DEFECTIVE),
        pl.col(CONFLICT),
        pl.col(REPEATED_IN_ROUND),
        (pl.col(contract.TARGET) < 1.77).cast(pl.Float64).alias(VULNERABLE),
        *[expr.alias(name) for rule in rules.rules for name, expr in rule.derived],
    )


def _reasons(
    checked: pl.DataFrame,
    frame: pl.DataFrame,
    view: pl.DataFrame,
    rules: RuleSet,
    counts: dict[str, int],
    defects: pl.DataFrame,
) -> pl.DataFrame:
    """Row index → list of (rule, expectation, column, value) for every failing row; values quoted only there."""
    parts: list[pl.DataFrame] = []
    for rule in rules.rules:
        if not counts[rule.name]:
            continue
        failing = view.join(checked.filter(pl.col(rule.name)).select(_IDX), on=_IDX)
        if rule.name == "row.readable":
            cells = (
                frame.select(_IDX, ROW)
                .join(failing.select(_IDX), on=_IDX)
                .join(defects, on=ROW)
                .explode(DEFECTS)
                .unnest(DEFECTS)
            )
            parts.append(
                cells.select(
                    _IDX,
                    pl.lit(rule.name).alias("rule"),
                    pl.lit(rule.expectation).alias("expectation"),
                    "column",
                    "value",
                )
            )
            continue
        parts.append(
            failing.select(
                _IDX,
                pl.lit(rule.name).alias("rule"),
                pl.lit(rule.expectation).alias("expectation"),
                pl.lit(rule.column, pl.String).alias("column"),
                rule.shown.cast(pl.String).alias("value"),
            )
        )
    if not parts:
        return pl.DataFrame(schema={_IDX: pl.UInt32, REASONS: REASON_DTYPE})
    return (
        pl.concat(parts)
        .group_by(_IDX, maintain_order=True)
        .agg(pl.struct("rule", "expectation", "column", "value").alias(REASONS))
    )


def validate(
    frame: pl.DataFrame, rules: RuleSet, defects: pl.DataFrame | None = None, *, build_docs: bool = True
) -> Validation:
    """Run the GX suite once for the batch and the row masks; check they agree; split accepted/quarantined."""
    if REPEATED_IN_ROUND not in frame.columns:  # a frame not checked against the registry (scoring, tests)
        frame = frame.with_columns(pl.lit(False).alias(REPEATED_IN_ROUND))
    frame = frame.with_row_index(_IDX)
    view = gx_frame(frame, rules)
    checked = view.with_row_index(_IDX).select(
        _IDX, *[rule.fails.fill_null(False).alias(rule.name) for rule in rules.rules]
    )
    mask_counts = checked.select([pl.col(r.name).sum() for r in rules.rules]).row(0, named=True)
    suite = run_suite(view, rules, build_docs=build_docs)
    _cross_check(mask_counts, suite)

    defects = defects if defects is not None else pl.DataFrame(schema=DEFECTS_SCHEMA)
    reasons = _reasons(checked, frame, view.with_row_index(_IDX), rules, mask_counts, defects)
    held = (
        frame[_IDX].is_in(reasons[_IDX].implode())
        if reasons.height
        else pl.repeat(False, frame.height, eager=True)
    )
    result = Validation(
        rows=frame.with_columns(held.alias(HELD)),
        reasons=reasons,
        rule_rows={name: int(n) for name, n in mask_counts.items() if n},
        batch_checks=suite.batch,
        docs_dir=suite.docs_dir,
    )
    result.outcomes = [
        {
            "rule": r.name,
            "expectation": r.expectation,
            "column": r.column,
            "unexpected_count": int(mask_counts[r.name]),
            "element_count": suite.elements.get(r.name, frame.height),
        }
        for r in rules.rules
    ]
    return result


def _cross_check(mask_counts: dict[str, int], suite: SuiteResult) -> None:
    wrong = {
        name: (int(mask_counts[name]), suite.unexpected.get(name))
        for name in mask_counts
        if int(mask_counts[name]) != suite.unexpected.get(name)
    }
    if wrong:
        detail = "; ".join(f"{name}: masks {m}, GX {g}" for name, (m, g) in sorted(wrong.items()))
        raise ValidationMismatch(f"validation engines disagree: {detail}")
