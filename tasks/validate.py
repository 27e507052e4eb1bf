"""Give every row an outcome: accepted, or quarantined with machine-readable reasons (rule, column, value)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tasks import contract
from tasks.conform import DEFECTS
from tasks.expectations import SuiteResult, run_suite
from tasks.rules import CONFLICT, DEFECT_COLUMNS, VULNERABLE, RuleSet

REASONS = "quarantine_reasons"
REASON_DTYPE = pl.List(pl.Struct({"rule": pl.String, "expectation": pl.String, "column": pl.String,
                                  "value": pl.String}))
_IDX = "_idx"


class ValidationMismatch(RuntimeError):
    """GX and the row masks disagree on a rule: the rule set has a bug; no outcome is trusted."""


@dataclass
class Validation:
    """Outcome of validating a batch."""

    accepted: pl.DataFrame
    quarantined: pl.DataFrame
    rule_rows: dict[str, int] = field(default_factory=dict)
    batch_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    docs_dir: Path | None = None


def gx_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns GX sees: no identifiers or tokens, defects as a column list, the vulnerability flag."""
    keep = [c for c in frame.columns if not c.endswith("_enc") and not c.startswith("_")
            and c not in ("officer_pseudonym", "device_pseudonym")]
    return frame.select(
        *keep,
        pl.col(DEFECTS).list.eval(pl.element().struct.field("column")).list.join(",").alias(DEFECT_COLUMNS),
        pl.col(CONFLICT),
        (pl.col(contract.TARGET) < 1.77).cast(pl.Float64).alias(VULNERABLE),
    )


def _reasons(checked: pl.DataFrame, frame: pl.DataFrame, rules: RuleSet, counts: dict[str, int]) -> pl.DataFrame:
    parts: list[pl.DataFrame] = []
    for rule in rules.rules:
        if not counts[rule.name]:
            continue
        failing = checked.filter(pl.col(rule.name))
        if rule.name == "row.readable":
            defects = (frame.select(_IDX, DEFECTS).join(failing.select(_IDX), on=_IDX)
                       .explode(DEFECTS).unnest(DEFECTS))
            parts.append(defects.select(_IDX, pl.lit(rule.name).alias("rule"),
                                        pl.lit(rule.expectation).alias("expectation"), "column", "value"))
            continue
        parts.append(failing.select(_IDX, pl.lit(rule.name).alias("rule"), pl.lit(rule.expectation).alias("expectation"),
                                    pl.lit(rule.column, pl.String).alias("column"),
                                    pl.col(f"{rule.name}:shown").alias("value")))
    if not parts:
        return pl.DataFrame(schema={_IDX: pl.UInt32, REASONS: REASON_DTYPE})
    return (pl.concat(parts).group_by(_IDX, maintain_order=True)
            .agg(pl.struct("rule", "expectation", "column", "value").alias(REASONS)))


def validate(frame: pl.DataFrame, rules: RuleSet, *, build_docs: bool = True) -> Validation:
    """Run the GX suite once for the batch and the row masks; check they agree; split accepted/quarantined."""
    frame = frame.with_row_index(_IDX)
    view = gx_frame(frame)
    checked = view.with_row_index(_IDX).select(
        _IDX,
        *[rule.fails.fill_null(False).alias(rule.name) for rule in rules.rules],
        *[rule.shown.cast(pl.String).alias(f"{rule.name}:shown") for rule in rules.rules],
    )
    mask_counts = checked.select([pl.col(r.name).sum() for r in rules.rules]).row(0, named=True)
    suite = run_suite(view.to_pandas(), rules, build_docs=build_docs)
    _cross_check(mask_counts, suite)

    reasons = _reasons(checked, frame, rules, mask_counts)
    joined = frame.join(reasons, on=_IDX, how="left", maintain_order="left")
    held = pl.col(REASONS).is_not_null()
    result = Validation(
        accepted=joined.filter(~held).drop(_IDX, REASONS),
        quarantined=joined.filter(held).drop(_IDX),
        rule_rows={name: int(n) for name, n in mask_counts.items() if n},
        batch_checks=suite.batch,
        docs_dir=suite.docs_dir,
    )
    result.outcomes = [
        {"rule": r.name, "expectation": r.expectation, "column": r.column,
         "unexpected_count": int(mask_counts[r.name]), "element_count": suite.elements.get(r.name, frame.height)}
        for r in rules.rules
    ]
    return result


def _cross_check(mask_counts: dict[str, int], suite: SuiteResult) -> None:
    wrong = {name: (int(mask_counts[name]), suite.unexpected.get(name))
             for name in mask_counts if int(mask_counts[name]) != suite.unexpected.get(name)}
    if wrong:
        detail = "; ".join(f"{name}: masks {m}, GX {g}" for name, (m, g) in sorted(wrong.items()))
        raise ValidationMismatch(f"validation engines disagree: {detail}")
