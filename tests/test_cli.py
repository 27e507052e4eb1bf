"""The `rtv` command line: clear output, exit codes, no tracebacks for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.settings import Settings

REPORT_KEYS = {"ingestion_id", "status", "source", "sha256", "rows_received", "rows_accepted", "rows_quarantined",
               "rows_duplicate", "fixes", "quarantine_reasons", "zones", "data_docs", "duration_s"}


def test_generate_writes_a_file_in_the_requested_format(tmp_path: Path, rtv_env: Settings) -> None:
    out = tmp_path / "demo.parquet"
    result = CliRunner().invoke(app, ["generate", "--rows", "250", "--seed", "1", "--bad-rate", "0.1",
                                      "--format", "parquet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "250 households" in result.output
    assert pl.read_parquet(out).height == 250


def test_generate_rejects_an_unknown_format(tmp_path: Path, rtv_env: Settings) -> None:
    result = CliRunner().invoke(app, ["generate", "--rows", "5", "--format", "docx", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


@pytest.mark.usefixtures("prefect_server")
def test_ingest_json_report_and_report_command(tmp_path: Path, rtv_env: Settings) -> None:
    path = tmp_path / "batch.csv"
    CliRunner().invoke(app, ["generate", "--rows", "120", "--seed", "2", "--bad-rate", "0.05", "--out", str(path)])
    result = CliRunner().invoke(app, ["ingest", str(path), "--source", "kobo-week-47", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
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
