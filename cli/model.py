"""`rtv retrain | predict | drift` and `rtv model list | rollback`: the vulnerability model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import EXIT_REJECTED, fail, open_runtime, prefect_defaults

model_app = typer.Typer(no_args_is_help=True, help="The registered vulnerability model.")


def retrain(
    force: Annotated[bool, typer.Option("--force", help="retrain even if no trigger fires")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the retrain triggers; when one fires, train, evaluate and register (promote only if better)."""
    prefect_defaults()
    from flows.retrain import retrain as retrain_flow

    summary = retrain_flow(force=force)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    typer.echo(f"decision: {summary['decision']}\nreason: {summary['reason']}")
    if summary["version"]:
        typer.echo(f"version {summary['version']} is {summary['alias']}; CV metrics: {summary['metrics']}")


def predict(
    path: Annotated[Path, typer.Argument(help="file to score (any format ingest reads); it is not ingested")],
    out: Annotated[Path | None, typer.Option(help="write one prediction per row to this CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score a file with the champion without ingesting it; prints households per status and risk band."""
    if not path.is_file():
        fail(f"{path} is not a readable file", EXIT_REJECTED)
    from tasks.workflows.scoring import ScoringError, score_file

    try:
        predictions, summary = score_file(open_runtime(), path.read_bytes())
    except ScoringError as bad:
        fail(str(bad), EXIT_REJECTED)
    if out is not None:
        predictions.drop("household_pseudonym").write_csv(out)
        summary["written_to"] = str(out)
    typer.echo(
        json.dumps(summary, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items())
    )


def drift(
    ingestion_id: Annotated[str, typer.Argument(help="ingestion id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Drift of an ingestion's accepted rows against the champion's training snapshot (computed if not stored)."""
    from tasks.monitoring.drift import drift_of

    rt = open_runtime()
    if rt.catalog.get(ingestion_id) is None:
        fail(f"no ingestion {ingestion_id!r}")
    result = drift_of(rt, ingestion_id)
    if result is None:
        fail("no champion model to compare with: run `rtv retrain` first")
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    typer.echo(
        f"drift: {'YES' if result['drift'] else 'no'}  score (max PSI) {result['score']}  rows {result['rows']}"
        f"  champion v{result['reference_version']}"
    )
    programme = result.get("programme_change") or {}
    if programme:
        changed = ", ".join(f"{name} (PSI {psi})" for name, psi in programme.items())
        typer.echo(f"programme change (reported, not drift: outcomes are meant to move): {changed}")
    for name, row in result["features"].items():
        hidden = ("flag", "rows", "kind", "changed")
        figures = "  ".join(f"{k} {v}" for k, v in row.items() if k not in hidden and v != [])
        mark = "!" if row["flag"] else "~" if row.get("changed") else " "
        typer.echo(f"  {mark} {name:<38} {figures}")


@model_app.command("list")
def model_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every registered version with its aliases and metrics."""
    from tasks.model.registry import has_store

    rt = open_runtime()
    versions = rt.registry.versions() if has_store(rt.settings.resolved_mlflow_uri) else []
    if as_json:
        typer.echo(json.dumps(versions, indent=2, default=str))
        return
    if not versions:
        typer.echo("no model registered yet: run `rtv retrain` after ingesting labelled data")
    for v in versions:
        typer.echo(
            f"v{v['version']:>3}  {','.join(v['aliases']) or '-':<20} CV ROC AUC {v['metrics']['roc_auc']}  "
            f"macro-F1 {v['metrics']['macro_f1_4class']}"
        )


@model_app.command("rollback")
def model_rollback() -> None:
    """Make the previous champion serve again (champion and previous swap)."""
    from tasks.model.lifecycle import rollback_champion

    try:
        done = rollback_champion(open_runtime())
    except LookupError as nothing:
        fail(str(nothing))
    typer.echo(f"champion is now v{done.restored} (v{done.demoted} is previous)")
