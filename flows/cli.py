"""`rtv`: the engineer's command line. Reads Settings once, then calls flows and plain functions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


@app.command()
def rerun(
    ingestion_id: Annotated[str, typer.Argument(help="a failed, interrupted or stuck ingestion")],
    force: Annotated[bool, typer.Option("--force", help="run again even if it completed")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run an ingestion again to completion; nothing is duplicated (outputs are keyed by the ingestion id)."""
    _prefect_defaults()
    rt = _runtime()
    ingestion = rt.catalog.get(ingestion_id)
    if ingestion is None:
        _fail(f"no ingestion {ingestion_id!r}")
    if ingestion.status in ("completed", "completed_with_quarantine", "rejected") and not force:
        _fail(f"ingestion {ingestion_id} is already {ingestion.status}; add --force to run it again")
    from flows.dispatch import mark_crashed
    from flows.ingest import ingest as ingest_flow

    if ingestion.flow_run_id:
        mark_crashed(ingestion.flow_run_id, f"interrupted; re-run by `rtv rerun {ingestion_id}`")
    _print_report(ingest_flow(ingestion_id), as_json)


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="generate and ingest demo households, train a first model")] = True,
    detach: Annotated[bool, typer.Option("--detach", help="start in the background; `rtv down` stops it")] = False,
    port: Annotated[int, typer.Option(help="Prefect server port")] = 4200,
) -> None:
    """Bring the whole product up on this machine; Ctrl-C stops everything."""
    from flows.stack import Stack, bring_up
    from tasks.settings import Settings

    settings = Settings()
    if detach:
        _detach(settings, demo, port)
        return
    stack = Stack(settings, prefect_port=port)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        where = bring_up(stack, demo=demo, say=lambda line: typer.echo(line, err=True))
        typer.echo("\n".join(f"{name:<12} {value}" for name, value in where.items()))
        typer.echo("Ctrl-C stops everything.")
        while all(s.process.poll() is None for s in stack.services if s.process):
            time.sleep(1)
        dead = [s.name for s in stack.services if s.process and s.process.poll() is not None]
        typer.echo(f"{', '.join(dead)} stopped unexpectedly; see {stack.run_dir}", err=True)
    except KeyboardInterrupt:
        typer.echo("stopping …", err=True)
    except RuntimeError as broken:
        typer.echo(f"error: {broken}", err=True)
        raise typer.Exit(1) from None
    finally:
        stack.stop()
        (stack.run_dir / "stack.json").unlink(missing_ok=True)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack the same way Ctrl-C does


def _detach(settings: Any, demo: bool, port: int) -> None:
    """Start `rtv up` in its own session, wait until it is ready, print where to look."""
    log = settings.data_dir / "run" / "up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    state = settings.data_dir / "run" / "stack.json"
    state.unlink(missing_ok=True)
    args = [sys.argv[0], "up", f"--port={port}", "--demo" if demo else "--no-demo"]
    with open(log, "ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    while not state.exists():
        if process.poll() is not None:
            _fail(f"the stack did not come up; see {log}")
        time.sleep(1)
    typer.echo("\n".join(f"{k:<12} {v}" for k, v in json.loads(state.read_text()).items() if k != "pid"))
    typer.echo("`rtv down` (or `make stop`) stops it.")


@app.command()
def down() -> None:
    """Stop a stack started with `rtv up --detach`."""
    from flows.stack import stop_detached
    from tasks.settings import Settings

    typer.echo("stopped" if stop_detached(Settings()) else "no stack was running")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
