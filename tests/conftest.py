"""Shared fixtures: an isolated data dir per test, the real RTV file, one Prefect test server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

ROOT = Path(__file__).resolve().parents[1]
REAL_FILE = Path(os.environ.get("RTV_REAL_DATA", ROOT.parent / "shared/data/rtv/DataScientist_01_Assessment.csv"))


@pytest.fixture(scope="session")
def real_csv() -> Path:
    """The real RTV assessment file (read-only; never copied into the repository)."""
    if not REAL_FILE.is_file():
        pytest.fail(f"the real RTV file is expected at {REAL_FILE} (CI provides it; set RTV_REAL_DATA)")
    return REAL_FILE


@pytest.fixture
def rtv_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Settings pointing at a fresh data dir and key file; flows read the same values from the environment."""
    for name in list(os.environ):
        if name.startswith("RTV_") and name != "RTV_REAL_DATA":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RTV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTV_KEY_FILE", str(tmp_path / "keys.json"))
    from tasks.settings import Settings

    yield Settings()


@pytest.fixture
def rt(rtv_env: object) -> object:
    """The Runtime for `rtv_env`."""
    from tasks.runtime import runtime_for

    return runtime_for(rtv_env)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect API for the whole session (it takes ~25 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
