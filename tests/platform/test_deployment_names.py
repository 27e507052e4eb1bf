"""prefect.yaml agrees with tasks/platform/deployments.py: one work pool, the same deployment and flow names."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.platform.deployments import ALL, WORK_POOL, deployment_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployments() -> list[dict[str, Any]]:
    """The deployments prefect.yaml lists (YAML anchors resolved)."""
    found: list[dict[str, Any]] = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    return found


def flow_name(entrypoint: str) -> str:
    """The name of the flow at `flows/x.py:function`, as Prefect registers it (its @flow name)."""
    path, function = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return str(getattr(module, function).name)


def test_every_deployment_runs_on_the_work_pool(deployments: list[dict[str, Any]]) -> None:
    assert {d["name"]: d["work_pool"]["name"] for d in deployments} == {
        d["name"]: WORK_POOL for d in deployments
    }


def test_deployment_names_match(deployments: list[dict[str, Any]]) -> None:
    names = [d["name"] for d in deployments]
    assert len(names) == len(set(names))
    assert set(names) == {deployment_name(n) for n in ALL}


def test_each_entrypoint_is_the_flow_its_full_name_says(deployments: list[dict[str, Any]]) -> None:
    expected = {deployment_name(n): n.split("/", 1)[0] for n in ALL}
    assert {d["name"]: flow_name(d["entrypoint"]) for d in deployments} == expected
