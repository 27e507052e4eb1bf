"""Great Expectations (GX Core 1.x): the suite built from the rules, one run per batch, Data Docs per ingestion.

GX is imported lazily: it costs 4-8 s (`shared/stack.md`), which the API and the dashboard must not pay.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import polars as pl

from tasks.ingest.rules import BatchCheck, Rule, RuleSet

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
    from great_expectations.execution_engine import pandas_execution_engine as engine_module
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import MulticolumnMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
        multicolumn_condition_partial,
    )
    from great_expectations.expectations.metrics.map_metric_provider.multicolumn_map_metric_provider import (
        MulticolumnMapMetricProvider,
    )

    # GX md5-fingerprints frames under 1 GB twice per run (~1.35 s per 1M rows); batches here are never reused.
    engine_module.HASH_THRESHOLD = 0
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"great_expectations(\..*)?")

    class MulticolumnLinearSumMatches(MulticolumnMapMetricProvider):
        condition_metric_name = "multicolumn_values.linear_sum_matches"
        condition_domain_keys = (
            "batch_id",
            "table",
            "column_list",
            "row_condition",
            "condition_parser",
            "ignore_row_if",
        )
        condition_value_keys = ("coefficients", "abs_tolerance", "rel_tolerance")

        @multicolumn_condition_partial(engine=PandasExecutionEngine)  # type: ignore[untyped-decorator]  # GX leaves it unannotated
        def _pandas(
            cls,
            column_list: pd.DataFrame,
            coefficients: list[float],
            abs_tolerance: float,
            rel_tolerance: float,
            **_: Any,
        ) -> pd.Series:
            expected = column_list.iloc[:, 1:].mul(coefficients, axis=1).sum(axis=1, skipna=False)
            return (column_list.iloc[:, 0] - expected).abs() <= abs_tolerance + rel_tolerance * expected.abs()

    class ExpectMulticolumnLinearSumToMatch(MulticolumnMapExpectation):
        """Expect the first column to equal the weighted sum of the others, within a tolerance."""

        coefficients: list[float]
        abs_tolerance: float = 0.01
        rel_tolerance: float = 0.0
        ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = (
            "any_value_is_missing"
        )
        map_metric = "multicolumn_values.linear_sum_matches"
        success_keys = ("mostly", "coefficients", "abs_tolerance", "rel_tolerance")
        args_keys = ("column_list", "coefficients")

    # published beside the built-in expectations, so `_expectation` finds it by name like any other
    setattr(gx.expectations, ExpectMulticolumnLinearSumToMatch.__name__, ExpectMulticolumnLinearSumToMatch)
    return gx


def _expectation(kind: str, kwargs: dict[str, Any], meta: dict[str, str]) -> Any:
    args = {k: v for k, v in kwargs.items() if v is not None}
    return getattr(_gx().expectations, kind)(**args, meta=meta)


def build_suite(rules: RuleSet, rows: int) -> Any:
    """The ExpectationSuite for a batch; distribution checks only when the batch is large enough."""
    gx = _gx()
    expectations = [
        _expectation(r.expectation, r.kwargs, {"rule": r.name, "notes": r.description}) for r in rules.rules
    ]
    expectations += [
        _expectation(c.expectation, c.kwargs, {"rule": c.name, "notes": c.description})
        for c in _active(rules.batch_checks, rows)
    ]
    # One constructor call: `add_expectation` compares each new expectation with all earlier ones (quadratic).
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


def _active(checks: list[BatchCheck], rows: int) -> list[BatchCheck]:
    return [c for c in checks if rows >= c.min_rows]


def _columns(kwargs: dict[str, Any]) -> tuple[str, ...]:
    named = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    return tuple(sorted({*named, *kwargs.get("column_list", [])}))


def _groups(rules: RuleSet, rows: int) -> dict[tuple[str, ...], list[tuple[str, str, dict[str, Any], str]]]:
    """(name, expectation, kwargs, notes) grouped by the columns they read; table checks join the first group."""
    groups: dict[tuple[str, ...], list[tuple[str, str, dict[str, Any], str]]] = {}
    for r in rules.rules:
        groups.setdefault(_columns(r.kwargs), []).append((r.name, r.expectation, r.kwargs, r.description))
    for c in _active(rules.batch_checks, rows):
        key = _columns(c.kwargs) or next(iter(groups))
        groups.setdefault(key, []).append((c.name, c.expectation, c.kwargs, c.description))
    return groups


def run_suite(frame: pl.DataFrame, rules: RuleSet, *, build_docs: bool = True) -> SuiteResult:
    """Validate a batch with GX (BASIC results) and build one Data Docs page for it in a temporary folder.

    GX's pandas engine copies the whole frame for each column expectation (null filtering), so a wide batch
    costs rows x columns x expectations: 25 s per million rows here. Each group of expectations therefore
    runs on a frame holding only the columns it reads (~5 s per million), and the results are put back
    together as one validation of the whole suite for Data Docs.
    """
    gx = _gx()
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("survey")
    items: list[Any] = []
    for i, (columns, members) in enumerate(_groups(rules, frame.height).items()):
        batch = source.add_dataframe_asset(f"part_{i}").add_batch_definition_whole_dataframe("whole")
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=f"{SUITE_NAME}_{i}",
                expectations=[
                    _expectation(kind, kwargs, {"rule": name, "notes": notes})
                    for name, kind, kwargs, notes in members
                ],
            )
        )
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"part_{i}", data=batch, suite=suite)
        )
        data = frame.select(columns or [frame.columns[0]]).to_pandas()
        items += definition.run(
            batch_parameters={"dataframe": data}, result_format={"result_format": "BASIC"}
        ).results
        _drop_batches(source)

    result = SuiteResult()
    for item in items:
        name = (item.expectation_config.meta or {}).get("rule", item.expectation_config.type)
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"GX could not evaluate {name}: {item.exception_info.get('exception_message')}"
            )
        if "unexpected_count" in item.result:
            result.unexpected[name] = int(item.result["unexpected_count"])
            result.elements[name] = int(item.result.get("element_count", frame.height))
        else:
            result.batch[name] = {
                "passed": bool(item.success),
                "observed": _plain(item.result.get("observed_value")),
            }
    passed = sum(bool(i.success) for i in items)
    result.statistics = {
        "evaluated_expectations": len(items),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(items) - passed,
        "success_percent": 100.0 * passed / len(items) if items else 100.0,
    }
    if build_docs:
        docs_dir = Path(tempfile.mkdtemp(prefix="rtv-docs-"))
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        suite_id = ExpectationSuiteIdentifier(name=SUITE_NAME)
        context.suites.add(build_suite(rules, frame.height))
        combined = ExpectationSuiteValidationResult(
            success=passed == len(items),
            results=items,
            suite_name=SUITE_NAME,
            statistics=result.statistics,
            meta={"active_batch_definition": {"datasource_name": "survey", "data_asset_name": "batch"}},
        )
        result_id = ValidationResultIdentifier(suite_id, RunIdentifier(run_name="ingest"), "batch")
        context.validation_results_store.set(result_id, combined)
        context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[result_id, suite_id])
        result.docs_dir = docs_dir
    _forget(context)
    return result


def _drop_batches(source: Any) -> None:
    """Release the pandas copies GX caches for every batch it has validated (~1.4 GB per 1M rows otherwise)."""
    manager = source.get_execution_engine().batch_manager
    manager.batch_cache.clear()
    manager.batch_data_cache.clear()


def _forget(context: Any) -> None:
    """Drop the ephemeral context, which GX keeps as the current project."""
    from great_expectations.data_context.data_context.context_factory import project_manager

    project_manager.set_project(None)
    gc.collect()  # GX objects form reference cycles: without a collection ~1.4 GB of batches per 1M rows linger


def _plain(value: Any) -> Any:
    """JSON-safe scalar (GX hands back numpy scalars)."""
    if hasattr(value, "item"):
        return value.item()
    return value


def rule_by_name(rules: RuleSet) -> dict[str, Rule]:
    return {r.name: r for r in rules.rules}
