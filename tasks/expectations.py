"""Great Expectations (GX Core 1.x): the suite built from the rules, one run per batch, Data Docs per ingestion.

GX is imported lazily: it costs 4-8 s (`shared/stack.md`), which the API and the dashboard must not pay.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.rules import BatchCheck, Rule, RuleSet

SUITE_NAME = "rtv_household_survey"
DOCS_SITE = "rtv_docs"  # the ephemeral context already owns "local_site"


@dataclass
class SuiteResult:
    """Unexpected counts per row rule, outcomes of the batch checks, and where Data Docs were built."""

    unexpected: dict[str, int] = field(default_factory=dict)
    elements: dict[str, int] = field(default_factory=dict)
    batch: dict[str, dict[str, Any]] = field(default_factory=dict)
    docs_dir: Path | None = None
    statistics: dict[str, Any] = field(default_factory=dict)


@cache
def _gx() -> Any:
    """Import GX once, register the custom expectation, and silence its progress bars and chatter."""
    import great_expectations as gx
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.execution_engine import pandas_execution_engine as engine_module
    from great_expectations.expectations.expectation import MulticolumnMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider import MulticolumnMapMetricProvider
    from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
        multicolumn_condition_partial,
    )

    # GX md5-fingerprints frames under 1 GB twice per run (~1.35 s per 1M rows); batches here are never reused.
    engine_module.HASH_THRESHOLD = 0
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"great_expectations(\..*)?")

    class MulticolumnLinearSumMatches(MulticolumnMapMetricProvider):
        condition_metric_name = "multicolumn_values.linear_sum_matches"
        condition_domain_keys = ("batch_id", "table", "column_list", "row_condition", "condition_parser",
                                 "ignore_row_if")
        condition_value_keys = ("coefficients", "abs_tolerance", "rel_tolerance")

        @multicolumn_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column_list: pd.DataFrame, coefficients: list[float], abs_tolerance: float,
                    rel_tolerance: float, **_: Any) -> pd.Series:
            expected = column_list.iloc[:, 1:].mul(coefficients, axis=1).sum(axis=1, skipna=False)
            return (column_list.iloc[:, 0] - expected).abs() <= abs_tolerance + rel_tolerance * expected.abs()

    class ExpectMulticolumnLinearSumToMatch(MulticolumnMapExpectation):
        """Expect the first column to equal the weighted sum of the others, within a tolerance."""

        coefficients: list[float]
        abs_tolerance: float = 0.01
        rel_tolerance: float = 0.0
        ignore_row_if: str = "any_value_is_missing"
        map_metric = "multicolumn_values.linear_sum_matches"
        success_keys = ("mostly", "coefficients", "abs_tolerance", "rel_tolerance")
        args_keys = ("column_list", "coefficients")

    gx.expectations.ExpectMulticolumnLinearSumToMatch = ExpectMulticolumnLinearSumToMatch
    return gx


def _expectation(kind: str, kwargs: dict[str, Any], condition: tuple[str, str, float] | None, meta: dict) -> Any:
    gx = _gx()
    from great_expectations.expectations.row_conditions import Column

    args = {k: v for k, v in kwargs.items() if v is not None}
    if condition:
        column, op, value = condition
        c = Column(column)
        args["row_condition"] = {"==": c == value, ">=": c >= value, ">": c > value}[op]
    return getattr(gx.expectations, kind)(**args, meta=meta)


def build_suite(rules: RuleSet, rows: int) -> Any:
    """The ExpectationSuite for a batch; distribution checks only when the batch is large enough."""
    gx = _gx()
    expectations = [_expectation(r.expectation, r.kwargs, r.condition, {"rule": r.name, "notes": r.description})
                    for r in rules.rules]
    expectations += [_expectation(c.expectation, c.kwargs, None, {"rule": c.name, "notes": c.description})
                     for c in _active(rules.batch_checks, rows)]
    # One constructor call: `add_expectation` compares each new expectation with all earlier ones (quadratic).
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


def _active(checks: list[BatchCheck], rows: int) -> list[BatchCheck]:
    return [c for c in checks if rows >= c.min_rows]


def run_suite(frame: pd.DataFrame, rules: RuleSet, *, build_docs: bool = True) -> SuiteResult:
    """Validate a batch once with GX (BASIC results) and build its Data Docs into a temporary folder."""
    gx = _gx()
    context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("survey").add_dataframe_asset("batch")
             .add_batch_definition_whole_dataframe("whole"))
    suite = context.suites.add(build_suite(rules, len(frame)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="ingest", data=batch, suite=suite))
    docs_dir = Path(tempfile.mkdtemp(prefix="rtv-docs-")) if build_docs else None
    if docs_dir:
        context.add_data_docs_site(site_name=DOCS_SITE, site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    from great_expectations.checkpoint import UpdateDataDocsAction

    actions = [UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE])] if docs_dir else []
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="ingest_checkpoint", validation_definitions=[definition], actions=actions,
        result_format={"result_format": "BASIC"},
    ))
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    validation = next(iter(outcome.run_results.values()))
    result = SuiteResult(docs_dir=docs_dir, statistics=dict(validation.statistics))
    for item in validation.results:
        meta = item.expectation_config.meta or {}
        name = meta.get("rule", item.expectation_config.type)
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX could not evaluate {name}: {item.exception_info.get('exception_message')}")
        if "unexpected_count" in item.result:
            result.unexpected[name] = int(item.result["unexpected_count"])
            result.elements[name] = int(item.result.get("element_count", len(frame)))
        else:
            result.batch[name] = {"passed": bool(item.success), "observed": _plain(item.result.get("observed_value"))}
    return result


def _plain(value: Any) -> Any:
    """JSON-safe scalar (GX hands back numpy scalars)."""
    if hasattr(value, "item"):
        return value.item()
    return value


def rule_by_name(rules: RuleSet) -> dict[str, Rule]:
    return {r.name: r for r in rules.rules}
