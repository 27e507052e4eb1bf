"""The layers contract (import-linter, run by `make lint`) holds today and fails on an import against it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("tasks", "flows", "api", "dashboard", "cli")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run the contracts of `tree/pyproject.toml` over the packages in `tree`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tree)},
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and pyproject.toml, to add one import to."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_import(tree: Path, module: str, line: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("tasks.platform.settings", "import tasks.ingest.contract", "tasks/ products in layers"),
        ("tasks.ingest.readers", "from tasks.runtime import Runtime", "tasks/ products in layers"),
        ("tasks.workflows.review", "import tasks.monitoring.drift", "tasks/ products in layers"),
        ("tasks.monitoring.health", "import tasks.workflows.archive", "tasks/ products in layers"),
        ("flows.ingest", "import dashboard.data", "doors above flows above tasks"),
        ("tasks.model.registry", "import flows.dispatch", "doors above flows above tasks"),
        ("api.app", "import dashboard.labels", "the doors do not import each other"),
    ],
)
def test_an_import_against_the_layers_breaks_the_contract(
    tree: Path, module: str, line: str, broken: str
) -> None:
    _add_import(tree, module, line)
    done = _lint(tree)
    assert done.returncode != 0
    verdicts = [
        line.strip() for line in done.stdout.splitlines() if line.strip().endswith(("KEPT", "BROKEN"))
    ]
    assert any(v.startswith(broken) and v.endswith("BROKEN") for v in verdicts), done.stdout[-3000:]


def test_a_runtime_import_for_type_checking_only_is_allowed(tree: Path) -> None:
    _add_import(
        tree,
        "tasks.ingest.readers",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tasks.runtime",
    )
    assert _lint(tree).returncode == 0
