"""`rtv`: the engineer's command line. Reads Settings once, then calls flows and plain functions."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Household-survey pipeline: ingest, inspect and operate.")

EXIT_REJECTED = 2


def _prefect_defaults() -> None:
    """Quiet, patient defaults for running flows from a terminal (an ephemeral server needs ~15-25 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _runtime() -> Any:
    from tasks.runtime import runtime_for
    from tasks.settings import Settings

    return runtime_for(Settings())


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    from tasks.report import ImportReport

    typer.echo(ImportReport.model_validate(report).to_markdown())


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="file to ingest (CSV, XLSX, JSON, JSON lines, Parquet, Kobo/ODK export)")],
    source: Annotated[str | None, typer.Option(help="where the file comes from (default: its name)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the import report as JSON")] = False,
) -> None:
    """Land a file and run the ingest flow on it; prints the import report."""
    _prefect_defaults()
    if not path.is_file():
        _fail(f"{path} is not a readable file", EXIT_REJECTED)
    from tasks.landing import EmptyUpload, TooLarge, land

    rt = _runtime()
    try:
        landed = land(rt, path, source_name=source or path.name, door="cli", filename=path.name,
                      submitted_by=os.environ.get("USER"))
    except (TooLarge, EmptyUpload) as bad:
        _fail(f"rejected: {bad}", EXIT_REJECTED)
    if landed.is_duplicate:
        from tasks.report import duplicate_report

        report = duplicate_report(landed.duplicate_of, landed.sha256, landed.size_bytes).model_dump(mode="json")
    else:
        from flows.ingest import ingest as ingest_flow

        report = ingest_flow(landed.ingestion_id)
    _print_report(report, as_json)
    if report["status"] == "rejected":
        typer.echo(f"rejected: {report.get('reason')}", err=True)
        raise typer.Exit(EXIT_REJECTED)


@app.command()
def report(
    ingestion_id: Annotated[str, typer.Argument(help="ingestion id, e.g. ing-20261126-020000-1a2b3c4d5e")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print an ingestion's import report from the catalog."""
    ingestion = _runtime().catalog.get(ingestion_id)
    if ingestion is None:
        _fail(f"no ingestion {ingestion_id!r}")
    if ingestion.report is None:
        _fail(f"ingestion {ingestion_id} is {ingestion.status}" + (f": {ingestion.error}" if ingestion.error else ""))
    _print_report(ingestion.report, as_json)


@app.command()
def generate(
    rows: Annotated[int, typer.Option(min=1, help="number of households")],
    out: Annotated[Path, typer.Option(help="output file")],
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    bad_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of rows with an injected fault")] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="csv, csv-semicolon, csv-utf16, tsv, xlsx, json, jsonl, "
                                     "parquet or kobo")] = "csv",
) -> None:
    """Write synthetic households that follow the contract (never real data)."""
    from tasks.generate import generate_households, write_households

    batch = generate_households(rows, seed=seed, bad_rate=bad_rate)
    try:
        write_households(batch.frame, out, fmt)
    except ValueError as bad:
        _fail(str(bad))
    typer.echo(f"wrote {rows:,} households to {out} ({len(batch.faults):,} with injected faults)")


@app.command()
def retrain(
    force: Annotated[bool, typer.Option("--force", help="retrain even if no trigger fires")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the retrain triggers; when one fires, train, evaluate and register (promote only if better)."""
    _prefect_defaults()
    from flows.retrain import retrain as retrain_flow

    summary = retrain_flow(force=force)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    typer.echo(f"decision: {summary['decision']}\nreason: {summary['reason']}")
    if summary["version"]:
        typer.echo(f"version {summary['version']} is {summary['alias']}; CV metrics: {summary['metrics']}")


@app.command()
def predict(
    path: Annotated[Path, typer.Argument(help="file to score (any format ingest reads); it is not ingested")],
    out: Annotated[Path | None, typer.Option(help="write one prediction per row to this CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score a file with the champion without ingesting it; prints households per status and risk band."""
    if not path.is_file():
        _fail(f"{path} is not a readable file", EXIT_REJECTED)
    from tasks.scoring import ScoringError, score_file

    rt = _runtime()
    try:
        predictions, summary = score_file(rt, path.read_bytes())
    except ScoringError as bad:
        _fail(str(bad), EXIT_REJECTED)
    if out is not None:
        predictions.drop("household_pseudonym").write_csv(out)
        summary["written_to"] = str(out)
    typer.echo(json.dumps(summary, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))


model_app = typer.Typer(no_args_is_help=True, help="The registered vulnerability model.")
app.add_typer(model_app, name="model")


@model_app.command("list")
def model_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every registered version with its aliases and metrics."""
    rt = _runtime()
    from tasks.registry import has_store

    versions = rt.registry.versions() if has_store(rt.settings.resolved_mlflow_uri) else []
    if as_json:
        typer.echo(json.dumps(versions, indent=2, default=str))
        return
    if not versions:
        typer.echo("no model registered yet: run `rtv retrain` after ingesting labelled data")
    for v in versions:
        typer.echo(f"v{v['version']:>3}  {','.join(v['aliases']) or '-':<20} CV ROC AUC {v['metrics']['roc_auc']}  "
                   f"macro-F1 {v['metrics']['macro_f1_4class']}")


@model_app.command("rollback")
def model_rollback() -> None:
    """Make the previous champion serve again (champion and previous swap)."""
    rt = _runtime()
    try:
        restored, demoted = rt.registry.rollback()
    except LookupError as nothing:
        _fail(str(nothing))
    rt.catalog.record_decision(triggers={"fired": ["rollback"]}, decision="rollback",
                               reason=f"rolled back from v{demoted} to v{restored}", model_name=rt.settings.model_name,
                               model_version=restored, alias="champion")
    typer.echo(f"champion is now v{restored} (v{demoted} is previous)")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
