"""The `rtv` command line: clear output, exit codes, no tracebacks for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.platform.settings import Settings

REPORT_KEYS = {
    "ingestion_id",
    "status",
    "source",
    "sha256",
    "rows_received",
    "rows_accepted",
    "rows_quarantined",
    "rows_duplicate",
    "fixes",
    "quarantine_reasons",
    "zones",
    "data_docs",
    "duration_s",
}


def test_generate_writes_a_file_in_the_requested_format(tmp_path: Path, rtv_env: Settings) -> None:
    out = tmp_path / "demo.parquet"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--rows",
            "250",
            "--seed",
            "1",
            "--bad-rate",
            "0.1",
            "--format",
            "parquet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "250 households" in result.output
    assert pl.read_parquet(out).height == 250


def test_generate_rejects_an_unknown_format(tmp_path: Path, rtv_env: Settings) -> None:
    result = CliRunner().invoke(
        app, ["generate", "--rows", "5", "--format", "docx", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


@pytest.mark.usefixtures("prefect_server")
def test_ingest_json_report_and_report_command(tmp_path: Path, rtv_env: Settings) -> None:
    path = tmp_path / "batch.csv"
    CliRunner().invoke(
        app, ["generate", "--rows", "120", "--seed", "2", "--bad-rate", "0.05", "--out", str(path)]
    )
    result = CliRunner().invoke(app, ["ingest", str(path), "--source", "kobo-week-47", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert set(report) >= REPORT_KEYS
    assert report["source"] == "kobo-week-47" and report["rows_received"] == 120
    assert report["status"] in ("completed", "completed_with_quarantine")
    again = CliRunner().invoke(app, ["report", report["ingestion_id"], "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["rows_accepted"] == report["rows_accepted"]
    text = CliRunner().invoke(app, ["report", report["ingestion_id"]])
    assert f"Import report `{report['ingestion_id']}`" in text.output


def test_missing_file_and_unknown_ingestion_are_clear_errors(tmp_path: Path, rtv_env: Settings) -> None:
    missing = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "is not a readable file" in missing.output
    unknown = CliRunner().invoke(app, ["report", "ing-20990101-000000-0000000000"])
    assert unknown.exit_code == 1 and "no ingestion" in unknown.output


def test_console_script_is_installed() -> None:
    rtv = Path(sys.executable).parent / "rtv"
    result = subprocess.run([str(rtv), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "ingest" in result.stdout and "generate" in result.stdout


def test_users_add_reads_the_password_from_stdin_and_users_list_shows_roles(rtv_env: Settings) -> None:
    from tasks.protection.audit import events
    from tasks.protection.users import authenticate
    from tasks.runtime import runtime_for

    password = "a-long-field-password"
    added = CliRunner().invoke(
        app, ["users", "add", "amina", "--role", "field_officer", "--password-stdin"], input=f"{password}\n"
    )
    assert added.exit_code == 0, added.output
    assert "added amina (field_officer)" in added.output and password not in added.output
    rt = runtime_for(rtv_env)
    user = authenticate(rt.catalog, "amina", password)
    assert user is not None and user.role == "field_officer" and password not in user.password_hash
    assert authenticate(rt.catalog, "amina", "another-password") is None
    assert [e.target for e in events(rt.catalog, action="user_added")] == ["amina"]
    CliRunner().invoke(
        app, ["users", "add", "okello", "--role", "manager", "--password-stdin"], input="mgr-password-1\n"
    )
    listed = CliRunner().invoke(app, ["users", "list"])
    assert listed.exit_code == 0
    assert [line.split() for line in listed.output.splitlines()] == [
        ["amina", "field_officer", "active"],
        ["okello", "manager", "active"],
    ]


def test_users_add_refuses_bad_input_without_a_traceback(rtv_env: Settings) -> None:
    def add(*args: str, stdin: str = "long-enough-password\n") -> Any:
        return CliRunner().invoke(app, ["users", "add", *args], input=stdin)

    assert add("amina", "--role", "engineer", "--password-stdin").exit_code == 0
    cases = {
        "already exists": add("amina", "--role", "engineer", "--password-stdin"),
        "unknown role": add("bob", "--role", "admin", "--password-stdin"),
        "at least 10 characters": add("bob", "--role", "manager", "--password-stdin", stdin="short\n"),
        "--password-stdin": add("bob", "--role", "manager"),
        "user names are": add("bob smith", "--role", "manager", "--password-stdin"),
    }
    for message, result in cases.items():
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, (
            message
        )
    listed = CliRunner().invoke(app, ["users", "list"]).output
    assert "bob" not in listed and "amina" in listed


def test_generate_rounds_writes_one_file_per_round_and_refuses_bad_input(
    tmp_path: Path, rtv_env: Settings
) -> None:
    out = tmp_path / "panel"
    args = ["generate", "--households", "400", "--rounds", "3", "--seed", "3", "--format", "jsonl"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = ["households-2025-Q1.jsonl", "households-2026-Q1.jsonl", "households-2027-Q1.jsonl"]
    assert sorted(p.name for p in out.iterdir()) == names
    lines = [line for line in result.output.splitlines() if line.startswith("wrote ")]
    assert len(lines) == 3
    for name, line in zip(names, lines, strict=True):
        rows = pl.read_ndjson(out / name).height
        assert name in line and f"wrote {rows:,} households" in line
    assert pl.read_ndjson(out / names[0]).height == 400
    assert (
        pl.read_ndjson(out / names[1])["HouseHoldID"]
        .is_in(pl.read_ndjson(out / names[0])["HouseHoldID"])
        .mean()
        > 0.9
    )
    single = CliRunner().invoke(app, ["generate", "--households", "7", "--out", str(tmp_path / "one.csv")])
    assert single.exit_code == 0 and pl.read_csv(tmp_path / "one.csv").height == 7
    a_file = tmp_path / "taken.csv"
    a_file.write_text("keep me")
    bad = {
        "--rounds must be 1 or more": ["--rounds", "0", "--out", str(tmp_path / "zero")],
        "is a file": ["--rounds", "2", "--out", str(a_file)],
        "unknown format": ["--rounds", "2", "--format", "docx", "--out", str(tmp_path / "docx")],
    }
    for message, extra in bad.items():
        refused = CliRunner().invoke(app, ["generate", "--households", "20", *extra])
        assert refused.exit_code == 2, (message, refused.output)
        errors = [line for line in refused.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in refused.output
    assert a_file.read_text() == "keep me"
    assert not (tmp_path / "zero").exists() and not (tmp_path / "docx").exists()
