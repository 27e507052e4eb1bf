"""`rtv rounds list` and `rtv progress`: JSON shapes, defaults, and exit 2 on a round that does not exist."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from typer.testing import CliRunner

from cli.main import app
from tasks.ingest import households as hh
from tasks.platform.catalog import Catalog

VILLAGE = {"district": ["Mitooma"] * 3, "cluster": ["C1"] * 3, "village": ["Kanyabwanga"] * 3}


def _round(
    catalog: Catalog, ingestion_id: str, survey_round: str, submitted: str, statuses: list[str]
) -> None:
    catalog.add_ingestion(
        id=ingestion_id,
        source="test",
        door="cli",
        sha256=ingestion_id.ljust(64, "0"),
        size_bytes=1,
        raw_key=f"raw/{ingestion_id}.enc",
        status="running",
    )
    rows = pl.DataFrame(
        {
            "household_pseudonym": ["h1", "h2", "h3"],
            "survey_round": [survey_round] * 3,
            "row_identity": [f"{ingestion_id}-{n}" for n in range(3)],
            "submitted_at": [submitted] * 3,
            "progress_status": statuses,
            "risk_band": ["High", "Medium", "Low"],
            **VILLAGE,
        }
    )
    hh.record_visits(catalog, ingestion_id, rows)
    hh.finalise_ingestion(catalog, ingestion_id)


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_rounds_list_and_progress_print_their_json_shapes(rt: Any) -> None:
    assert json.loads(_invoke("rounds", "list", "--json").output) == []
    _round(rt.catalog, "ing-a", "2025-baseline", "2025-03-01", ["Struggling", "At Risk", "On Track"])
    _round(rt.catalog, "ing-b", "2026-Q2", "2026-05-01", ["At Risk", "At Risk", "Struggling"])

    listed = _invoke("rounds", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == [
        {"round": "2025-baseline", "households": 3, "visits": 3, "ingestions": 1},
        {"round": "2026-Q2", "households": 3, "visits": 3, "ingestions": 1},
    ]
    assert "2026-Q2" in _invoke("rounds", "list").output

    shown = _invoke("progress", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {
        "rounds": ["2025-baseline", "2026-Q2"],
        "households": {"from": 3, "to": 3, "both": 3},
        "transitions": {
            "Struggling": {"At Risk": 1},
            "At Risk": {"At Risk": 1},
            "On Track": {"Struggling": 1},
        },
        "risk_transitions": {"High": {"High": 1}, "Medium": {"Medium": 1}, "Low": {"Low": 1}},
        "improved": 1,
        "worsened": 1,
        "unchanged": 1,
    }
    chosen = _invoke(
        "progress", "--from", "2025-baseline", "--to", "2026-Q2", "--district", "Kabale", "--json"
    )
    assert json.loads(chosen.output)["households"] == {"from": 0, "to": 0, "both": 0}
    assert "improved 1, worsened 1, unchanged 1" in _invoke("progress").output


def test_progress_exits_2_on_an_unknown_round_or_too_few_rounds(rt: Any) -> None:
    too_few = _invoke("progress", "--json")
    assert too_few.exit_code == 2 and "error:" in too_few.output and "Traceback" not in too_few.output
    _round(rt.catalog, "ing-a", "2025-baseline", "2025-03-01", ["Struggling", "At Risk", "On Track"])
    assert _invoke("progress").exit_code == 2
    _round(rt.catalog, "ing-b", "2026-Q2", "2026-05-01", ["At Risk", "At Risk", "Struggling"])
    unknown = _invoke("progress", "--from", "2024-Q1", "--json")
    assert unknown.exit_code == 2 and "error:" in unknown.output and "2024-Q1" in unknown.output
