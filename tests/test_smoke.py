"""Everything imports, and the contract-driven pieces agree with each other."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import flows
import tasks
from tasks.ingest import contract
from tasks.ingest.features import FEATURES, model_safe_features
from tasks.ingest.rules import build_rules


def _modules(package: object) -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")  # type: ignore[attr-defined]
        if ".migrations" not in m.name
    ]


@pytest.mark.parametrize("name", _modules(tasks) + _modules(flows))
def test_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_every_contract_column_has_a_rule_and_a_label() -> None:
    rules = build_rules(max_rows=10, completeness_threshold=0.95, distribution_min_rows=100)
    checked = {r.column for r in rules.rules}
    for col in contract.ALL_COLUMNS:
        assert col.label
        if not col.nullable or col.min is not None or col.codes or col.pattern:
            assert col.name in checked, col.name


def test_model_safe_features_never_read_the_target() -> None:
    leaky = contract.target_closure()
    safe = set(model_safe_features())
    for feature in FEATURES:
        if feature.name in safe:
            assert not set(feature.inputs) & leaky, feature.name
    assert "income_per_person_per_day" not in safe and "livelihood_diversity" not in safe


def test_configuration_table_matches_settings() -> None:
    """docs/configuration.md holds, between its settings-table markers, exactly what Settings generates."""
    import re
    from pathlib import Path

    from tasks.platform.settings import settings_table

    root = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
    page = (root / "docs" / "configuration.md").read_text()
    found = re.search(r"<!-- settings-table:[^\n]*-->\n(.*?)\n<!-- /settings-table -->", page, re.S)
    assert found, "docs/configuration.md lost its <!-- settings-table --> markers"
    assert found.group(1) == settings_table(), (
        "docs/configuration.md's settings table is stale: paste `python -m tasks.platform.settings` between the markers"
    )
