"""`rtv users assign`: villages as DISTRICT/CLUSTER/VILLAGE, field officers only, audited, shown by `users list`."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from typer.testing import CliRunner

from cli.main import app
from tasks.ingest import households as hh
from tasks.protection.assignments import Village, villages_of
from tasks.protection.audit import events
from tasks.protection.users import add_user

PASSWORD = "a-long-field-password"


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _seen(rt: Any) -> None:
    """One final visit in Mitooma/C1/Kanyabwanga, so that village is known to the registry."""
    rt.catalog.add_ingestion(
        id="ing-a",
        source="test",
        door="cli",
        sha256="a" * 64,
        size_bytes=1,
        raw_key="raw/a",
        status="running",
    )
    row = {
        "household_pseudonym": ["h1"],
        "survey_round": ["2025-baseline"],
        "row_identity": ["r1"],
        "submitted_at": ["2025-03-01"],
        "district": ["Mitooma"],
        "cluster": ["C1"],
        "village": ["Kanyabwanga"],
    }
    hh.record_visits(rt.catalog, "ing-a", pl.DataFrame(row))
    hh.finalise_ingestion(rt.catalog, "ing-a")


def test_assign_list_and_remove_villages_with_an_audit_trail(rt: Any) -> None:
    add_user(rt.catalog, "amina", "field_officer", PASSWORD)
    add_user(rt.catalog, "okello", "manager", PASSWORD)
    _seen(rt)

    added = _invoke(
        "users",
        "assign",
        "amina",
        "--village",
        "Mitooma/C1/Kanyabwanga",
        "--village",
        " Mitooma / C2 / Kanyabwanga ",
    )
    assert added.exit_code == 0, added.output
    assert "2 village(s) assigned to amina" in added.output
    # the second village has no household yet: said, not refused (an officer can be assigned before a baseline)
    assert "note: no household was last seen in Mitooma/C2/Kanyabwanga" in added.output
    assert villages_of(rt.catalog, "amina") == [
        Village("Mitooma", "C1", "Kanyabwanga"),
        Village("Mitooma", "C2", "Kanyabwanga"),
    ]  # the same village name in two clusters is two villages
    again = _invoke("users", "assign", "amina", "--village", "Mitooma/C1/Kanyabwanga")
    assert again.exit_code == 0 and "0 village(s)" in again.output and "already assigned" in again.output

    listed = _invoke("users", "list")
    assert listed.exit_code == 0
    assert [line.split() for line in listed.output.splitlines()] == [
        ["amina", "field_officer", "active"],
        ["village", "Mitooma/C1/Kanyabwanga"],
        ["village", "Mitooma/C2/Kanyabwanga"],
        ["okello", "manager", "active"],
    ]
    as_json = json.loads(_invoke("users", "list", "--json").output)
    assert as_json == [
        {
            "name": "amina",
            "role": "field_officer",
            "active": True,
            "villages": ["Mitooma/C1/Kanyabwanga", "Mitooma/C2/Kanyabwanga"],
        },
        {"name": "okello", "role": "manager", "active": True, "villages": []},
    ]

    removed = _invoke("users", "assign", "amina", "--village", "Mitooma/C2/Kanyabwanga", "--remove")
    assert removed.exit_code == 0 and "1 village(s) removed from amina" in removed.output
    assert villages_of(rt.catalog, "amina") == [Village("Mitooma", "C1", "Kanyabwanga")]

    trail = [(e.action, e.target, e.detail) for e in reversed(events(rt.catalog))]
    assert trail == [
        ("villages_assigned", "amina", {"villages": ["Mitooma/C1/Kanyabwanga", "Mitooma/C2/Kanyabwanga"]}),
        ("villages_unassigned", "amina", {"villages": ["Mitooma/C2/Kanyabwanga"]}),
    ]  # the no-op assignment changed nothing and recorded nothing


def test_assign_refuses_bad_villages_unknown_users_and_other_roles(rt: Any) -> None:
    add_user(rt.catalog, "amina", "field_officer", PASSWORD)
    add_user(rt.catalog, "okello", "manager", PASSWORD)
    bad_triples = [
        "Mitooma/Kanyabwanga",
        "Mitooma//Kanyabwanga",
        "a/b/c/d",
        " / / ",
        "Mitooma/C1/" + "x" * 81,
    ]
    for text in bad_triples:
        result = _invoke("users", "assign", "amina", "--village", text)
        assert result.exit_code == 2, (text, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --village:"), (text, result.output)
        assert "Traceback" not in result.output
    no_village = _invoke("users", "assign", "amina")
    assert no_village.exit_code == 2 and "name at least one village" in no_village.output

    unknown = _invoke("users", "assign", "nobody", "--village", "Mitooma/C1/Kanyabwanga")
    assert unknown.exit_code == 1 and "no user named 'nobody'" in unknown.output
    manager = _invoke("users", "assign", "okello", "--village", "Mitooma/C1/Kanyabwanga")
    assert manager.exit_code == 1 and "only field officers are assigned" in manager.output
    assert "Traceback" not in unknown.output + manager.output

    assert villages_of(rt.catalog, "amina") == [] and villages_of(rt.catalog, "okello") == []
    assert [e.action for e in events(rt.catalog)] == []  # nothing changed, nothing recorded
