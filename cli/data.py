"""`rtv ingest | report | generate | rerun`: files into the pipeline and their import reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import EXIT_REJECTED, current_user, fail, open_runtime, prefect_defaults, print_report


def ingest(
    path: Annotated[
        Path, typer.Argument(help="file to ingest (CSV, XLSX, JSON, JSON lines, Parquet, Kobo/ODK export)")
    ],
    source: Annotated[str | None, typer.Option(help="where the file comes from (default: its name)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the import report as JSON")] = False,
    survey_round: Annotated[
        str | None,
        typer.Option(
            "--round",
            help="survey round of every row, e.g. 2025-baseline or 2026-Q2 (default: from each row's "
            "submitted_at, else the landing time, by RTV_ROUND_CALENDAR)",
        ),
    ] = None,
) -> None:
    """Land a file and run the ingest flow on it; prints the import report."""
    prefect_defaults()
    from tasks.ingest.rounds import BadRoundLabel, optional_round

    try:
        survey_round = optional_round(survey_round)  # refused before the file is even opened
    except BadRoundLabel as bad:
        fail(f"--round {survey_round!r}: {bad}", EXIT_REJECTED)
    if not path.is_file():
        fail(f"{path} is not a readable file", EXIT_REJECTED)
    from tasks.ingest.landing import EmptyUpload, TooLarge, accept_file

    rt = open_runtime()
    try:
        landed = accept_file(
            rt,
            path,
            door="cli",
            source_name=source or path.name,
            filename=path.name,
            submitted_by=current_user(),
            survey_round=survey_round,
        )
    except (TooLarge, EmptyUpload) as bad:
        fail(f"rejected: {bad}", EXIT_REJECTED)
    report: dict[str, Any]
    if landed.duplicate_of is not None:
        from tasks.ingest.report import duplicate_report

        report = duplicate_report(landed.duplicate_of, landed.sha256, landed.size_bytes).model_dump(
            mode="json"
        )
    else:
        from flows.ingest import ingest as ingest_flow

        report = ingest_flow(landed.ingestion_id)
    print_report(report, as_json)
    if report["status"] == "rejected":
        typer.echo(f"rejected: {report.get('reason')}", err=True)
        raise typer.Exit(EXIT_REJECTED)


def report(
    ingestion_id: Annotated[str, typer.Argument(help="ingestion id, e.g. ing-20261126-020000-1a2b3c4d5e")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print an ingestion's import report from the catalog."""
    ingestion = open_runtime().catalog.get(ingestion_id)
    if ingestion is None:
        fail(f"no ingestion {ingestion_id!r}")
    if ingestion.report is None:
        fail(
            f"ingestion {ingestion_id} is {ingestion.status}"
            + (f": {ingestion.error}" if ingestion.error else "")
        )
    print_report(ingestion.report, as_json)


def generate(
    rows: Annotated[int, typer.Option("--rows", "--households", min=1, help="number of households")],
    out: Annotated[Path, typer.Option(help="output file; with --rounds above 1, a directory")],
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    bad_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of rows with an injected fault")
    ] = 0.0,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="csv, csv-semicolon, csv-utf16, tsv, xlsx, json, jsonl, parquet or kobo"
        ),
    ] = "csv",
    rounds: Annotated[
        int,
        typer.Option(
            help="survey rounds of the same households, one file per round (households-<round>.<ext>)"
        ),
    ] = 1,
) -> None:
    """Write synthetic households that follow the contract (never real data), for one or more rounds."""
    if rounds != 1:
        _generate_panel(rows, rounds, out, seed, bad_rate, fmt)
        return
    from tasks.ingest.generate import generate_households, write_households

    batch = generate_households(rows, seed=seed, bad_rate=bad_rate)
    try:
        write_households(batch.frame, out, fmt)
    except ValueError as bad:
        fail(str(bad))
    typer.echo(f"wrote {rows:,} households to {out} ({len(batch.faults):,} with injected faults)")


def _generate_panel(households: int, rounds: int, out: Path, seed: int, bad_rate: float, fmt: str) -> None:
    """Write one file per round into the directory `out`; bad input exits 2 before anything is written."""
    from tasks.ingest.generate import FORMATS, generate_panel, write_panel

    if rounds < 1:
        fail(f"--rounds must be 1 or more, not {rounds}", EXIT_REJECTED)
    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}", EXIT_REJECTED)
    if out.exists() and not out.is_dir():
        fail(f"{out} is a file; with --rounds above 1, --out is a directory", EXIT_REJECTED)
    try:
        written = write_panel(generate_panel(households, rounds, seed=seed, bad_rate=bad_rate), out, fmt)
    except (ValueError, OSError) as bad:
        fail(str(bad), EXIT_REJECTED)
    for w in written:
        typer.echo(f"wrote {w.rows:,} households to {w.path} (round {w.label})")


def rerun(
    ingestion_id: Annotated[str, typer.Argument(help="a failed, interrupted or stuck ingestion")],
    force: Annotated[bool, typer.Option("--force", help="run again even if it completed")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run an ingestion again to completion; nothing is duplicated (outputs are keyed by the ingestion id)."""
    prefect_defaults()
    ingestion = open_runtime().catalog.get(ingestion_id)
    if ingestion is None:
        fail(f"no ingestion {ingestion_id!r}")
    if ingestion.raw_purged_at is not None:
        fail(f"the raw file of {ingestion_id} was deleted after RTV_RETENTION_DAYS; it cannot run again")
    if ingestion.status in ("completed", "completed_with_quarantine", "rejected") and not force:
        fail(f"ingestion {ingestion_id} is already {ingestion.status}; add --force to run it again")
    from flows.dispatch import mark_crashed
    from flows.ingest import ingest as ingest_flow

    if ingestion.flow_run_id:
        mark_crashed(ingestion.flow_run_id, f"interrupted; re-run by `rtv rerun {ingestion_id}`")
    print_report(ingest_flow(ingestion_id), as_json)
