"""Validation rules generated from the contract. Each rule is one GX expectation and one polars row mask.

The GX suite (`tasks.ingest.expectations`) and the per-row outcomes come from the same `Rule` objects; every run
checks that GX's failure count per expectation equals the mask's (`shared/stack.md` §8: masks are 40x faster
than GX `COMPLETE` for row ids, GX stays the authority for counts and Data Docs).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import polars as pl

from tasks.ingest import contract
from tasks.ingest.contract import COLUMNS, CROSS_FIELD_RULES, DERIVATIONS, METADATA, PART_OF, Role

# Columns the validation frame carries instead of personal data.
PSEUDONYM = "household_pseudonym"
ID_SHAPE = "household_id_shape"
ID_DISTRICT = "household_id_district"
DEFECTIVE = "_defective"  # set by conform: a cell did not parse or the row had the wrong number of fields
CONFLICT = "_instance_conflict"
REPEATED_IN_ROUND = "_repeated_in_round"  # set before validation from the household registry
VULNERABLE = "_vulnerable"

_OPS = {"==": operator.eq, ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Rule:
    """A row-level rule: its GX expectation (type + kwargs) and the polars expression true where a row fails."""

    name: str
    column: str | None
    expectation: str  # GX class name, e.g. "ExpectColumnValuesToBeBetween"
    kwargs: dict[str, Any]
    fails: pl.Expr
    shown: pl.Expr  # the value quoted in the quarantine reason
    description: str = ""
    derived: tuple[tuple[str, pl.Expr], ...] = ()  # helper columns GX validates instead of a slow built-in


@dataclass(frozen=True)
class BatchCheck:
    """A whole-batch expectation: it warns, it does not quarantine rows."""

    name: str
    expectation: str
    kwargs: dict[str, Any]
    description: str = ""
    min_rows: int = 0


@dataclass
class RuleSet:
    """The row rules and batch checks of one validation run."""

    rules: list[Rule] = field(default_factory=list)
    batch_checks: list[BatchCheck] = field(default_factory=list)
    completeness_threshold: float = 0.95


def _text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def _column_rules(col: contract.Column) -> list[Rule]:
    c = pl.col(col.name)
    rules: list[Rule] = []
    if not col.nullable:
        rules.append(
            Rule(
                f"{col.name}.not_null",
                col.name,
                "ExpectColumnValuesToNotBeNull",
                {"column": col.name},
                c.is_null(),
                pl.lit(None, pl.String),
                description="is required",
            )
        )
    # Derived totals are bounded by their terms' ranges and checked by their formula; the target keeps its range.
    derived_only = Role.DERIVED in col.roles and Role.TARGET not in col.roles
    if (col.min is not None or col.max is not None) and not derived_only:
        outside = reduce(
            operator.or_,
            [
                e
                for e in (
                    c < col.min if col.min is not None else None,
                    c > col.max if col.max is not None else None,
                )
                if e is not None
            ],
        )
        rules.append(
            Rule(
                f"{col.name}.range",
                col.name,
                "ExpectColumnValuesToBeBetween",
                {"column": col.name, "min_value": col.min, "max_value": col.max},
                c.is_not_null() & outside,
                _text(c),
                description=f"between {col.min} and {col.max}",
            )
        )
    if col.codes:
        rules.append(
            Rule(
                f"{col.name}.codes",
                col.name,
                "ExpectColumnValuesToBeInSet",
                {"column": col.name, "value_set": list(col.codes)},
                c.is_not_null() & ~c.is_in(list(col.codes)),
                _text(c),
                description=f"one of {', '.join(map(str, col.codes))}",
            )
        )
    if col.pattern:
        rules.append(
            Rule(
                f"{col.name}.pattern",
                col.name,
                "ExpectColumnValuesToMatchRegex",
                {"column": col.name, "regex": col.pattern},
                c.is_not_null() & ~c.str.contains(col.pattern),
                _text(c).str.slice(0, 80),
                description="matches the expected format",
            )
        )
    return rules


def _derivation_rule(d: contract.Derivation) -> Rule:
    expected = pl.sum_horizontal([pl.col(t) * k for t, k in d.terms])
    target = pl.col(d.target)
    present = pl.all_horizontal([pl.col(n).is_not_null() for n in (d.target, *d.term_names)])
    off = (target - expected).abs() > d.abs_tolerance + d.rel_tolerance * expected.abs()
    return Rule(
        f"derivation.{d.target}",
        d.target,
        "ExpectMulticolumnLinearSumToMatch",
        {
            "column_list": [d.target, *d.term_names],
            "coefficients": [k for _, k in d.terms],
            "abs_tolerance": d.abs_tolerance,
            "rel_tolerance": d.rel_tolerance,
        },
        present & off,
        pl.format("{} ≠ {}", target.round(4), expected.round(4)),
        description=f"{contract.source_name(d.target)} equals its formula",
    )


def _cross_field_rule(r: contract.CrossFieldRule) -> Rule:
    """`when` ⇒ `expect`, checked on a helper column that holds the value only where `when` holds.

    GX's row_condition copies the frame through pandas.query for every rule (~1 s per rule per 1M rows).
    """
    when_col, when_op, when_value = r.when
    op, value = r.expect
    applies = _OPS[when_op](pl.col(when_col), when_value).fill_null(False)
    c = pl.col(r.column)
    helper = f"_when:{r.name}"
    kwargs: dict[str, float | bool | list[float]]
    if op == "==":
        expectation, kwargs = "ExpectColumnValuesToBeInSet", {"value_set": [value]}
    else:
        expectation, kwargs = "ExpectColumnValuesToBeBetween", {"min_value": value, "strict_min": op == ">"}
    return Rule(
        f"rule.{r.name}",
        r.column,
        expectation,
        {"column": helper, **kwargs},
        applies & c.is_not_null() & ~_OPS[op](c, value),
        _text(c),
        description=r.description,
        derived=((helper, pl.when(applies).then(c).otherwise(None)),),
    )


def _pair_in_set(name: str, a: str, b: str, pairs: list[tuple[str, str]], description: str) -> Rule:
    """Pair membership as one combined column: GX's column-pair expectation walks rows in Python (~80 s/1M)."""
    combined = f"_pair:{name}"
    key = pl.concat_str([pl.col(a), pl.col(b)], separator=" / ")
    allowed = [f"{x} / {y}" for x, y in pairs]
    return Rule(
        name,
        b,
        "ExpectColumnValuesToBeInSet",
        {"column": combined, "value_set": allowed},
        key.is_not_null() & ~key.is_in(allowed),
        key,
        description=description,
        derived=((combined, key),),
    )


def build_rules(*, max_rows: int, completeness_threshold: float, distribution_min_rows: int) -> RuleSet:
    """Every rule and batch check, generated from the contract tables."""
    rules = RuleSet(completeness_threshold=completeness_threshold)
    rules.rules.append(
        Rule(
            "row.readable",
            None,
            "ExpectColumnValuesToBeInSet",
            {"column": DEFECTIVE, "value_set": [False]},
            pl.col(DEFECTIVE),
            pl.lit(None, pl.String),
            description="every cell parses and the row has the header's number of fields",
        )
    )
    for col in COLUMNS + METADATA:
        if Role.PII not in col.roles:
            rules.rules.extend(_column_rules(col))
    rules.rules.append(
        Rule(
            "household_id.not_null",
            "household_id",
            "ExpectColumnValuesToNotBeNull",
            {"column": PSEUDONYM},
            pl.col(PSEUDONYM).is_null(),
            pl.lit(None, pl.String),
            description="is required",
        )
    )
    rules.rules.append(
        Rule(
            "household_id.format",
            "household_id",
            "ExpectColumnValuesToMatchRegex",
            {"column": ID_SHAPE, "regex": contract.HOUSEHOLD_ID_PATTERN},
            pl.col(ID_SHAPE).is_not_null() & ~pl.col(ID_SHAPE).str.contains(contract.HOUSEHOLD_ID_PATTERN),
            pl.col(ID_SHAPE),
            description="DDD-VVV-XXX-Ln, or RUB-VVV-F|M-n in Rubanda",
        )
    )
    rules.rules.append(
        _pair_in_set(
            "household_id.district",
            "district",
            ID_DISTRICT,
            list(contract.DISTRICT_CODES.items()),
            "the id's district code matches District",
        )
    )
    rules.rules.append(
        Rule(
            "household_id.repeated",
            "household_id",
            "ExpectColumnValuesToBeUnique",
            {"column": PSEUDONYM},
            pl.col(PSEUDONYM).is_not_null() & pl.col(PSEUDONYM).is_duplicated(),
            pl.lit("repeated with different answers"),
            description="a household appears once per batch (repeats held for review)",
        )
    )
    rules.rules.append(
        Rule(
            "household.repeated_in_round",
            "household_id",
            "ExpectColumnValuesToBeInSet",
            {"column": REPEATED_IN_ROUND, "value_set": [False]},
            pl.col(REPEATED_IN_ROUND),
            pl.lit("the household already has an accepted visit in this survey round"),
            description="one visit per household and round (other answers are held for review)",
        )
    )
    rules.rules.append(
        Rule(
            "instance_id.conflict",
            "instance_id",
            "ExpectColumnValuesToBeInSet",
            {"column": CONFLICT, "value_set": [False]},
            pl.col(CONFLICT),
            pl.lit("same instance id, different answers"),
            description="an instance id stored earlier arrives with the same answers",
        )
    )
    rules.rules.append(
        _pair_in_set(
            "cluster.in_district",
            "district",
            "cluster",
            [(d, c) for d, cs in contract.DISTRICT_CLUSTERS.items() for c in cs],
            "the cluster belongs to the district",
        )
    )
    rules.rules.extend(_derivation_rule(d) for d in DERIVATIONS)
    for part, whole in PART_OF:
        p, w = pl.col(part), pl.col(whole)
        rules.rules.append(
            Rule(
                f"part_of.{part}.{whole}",
                part,
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": whole,
                    "column_B": part,
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
                p.is_not_null() & w.is_not_null() & (p > w),
                pl.format("{} > {}", p.round(4), w.round(4)),
                description=f"{contract.source_name(part)} is part of {contract.source_name(whole)}",
            )
        )
    rules.rules.extend(_cross_field_rule(r) for r in CROSS_FIELD_RULES)

    target = contract.TARGET
    rules.batch_checks = [
        BatchCheck(
            "row_count",
            "ExpectTableRowCountToBeBetween",
            {"min_value": 1, "max_value": max_rows},
            "the batch has rows, within the cap",
        ),
        BatchCheck(
            "household_size_mean",
            "ExpectColumnMeanToBeBetween",
            {"column": "household_size", "min_value": 3.8, "max_value": 5.8},
            "mean household size near 4.8",
            distribution_min_rows,
        ),
        BatchCheck(
            "target_mean",
            "ExpectColumnMeanToBeBetween",
            {"column": target, "min_value": 1.74, "max_value": 2.74},
            "mean income+consumption per day near 2.24",
            distribution_min_rows,
        ),
        BatchCheck(
            "vulnerable_share",
            "ExpectColumnMeanToBeBetween",
            {"column": VULNERABLE, "min_value": 0.325, "max_value": 0.525},
            "share Struggling or Severely Struggling near 0.425",
            distribution_min_rows,
        ),
    ]
    return rules


def completeness(frame: pl.DataFrame) -> float:
    """Share of non-null cells over the contract's survey columns (the source's 97.4% figure)."""
    names = [n for n in contract.CANONICAL_NAMES if n in frame.columns]
    if frame.height == 0 or not names:
        return 0.0
    nulls: int = frame.select(pl.sum_horizontal([pl.col(n).null_count() for n in names])).item()
    return 1.0 - nulls / (frame.height * len(names))
