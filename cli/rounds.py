"""`rtv rounds list`, `rtv rounds reassign` and `rtv progress`: households per survey round, and how they moved."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import EXIT_REJECTED, current_user, fail, open_runtime

rounds_app = typer.Typer(no_args_is_help=True, help="Survey rounds: households and visits per campaign.")


@rounds_app.command("list")
def rounds_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every round with counted visits, in the order it was collected: households, visits, ingestions."""
    from tasks.ingest.households import rounds

    found = rounds(open_runtime().catalog)
    rows = [
        {
            "round": r["round"],
            "households": r["households"],
            "visits": r["visits"],
            "ingestions": r["ingestions"],
        }
        for r in found
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no survey rounds yet")
        return
    typer.echo(f"{'round':<24} {'households':>10} {'visits':>8} {'ingestions':>10}")
    for row in rows:
        typer.echo(f"{row['round']:<24} {row['households']:>10} {row['visits']:>8} {row['ingestions']:>10}")


@rounds_app.command("reassign")
def rounds_reassign(
    ingestion_id: Annotated[str, typer.Argument(help="the ingestion whose round was declared wrongly")],
    new_round: Annotated[str, typer.Option("--round", help="the right round label, e.g. 2026-Q2")],
) -> None:
    """Move an ingestion and its visits to another round. Zone files keep the old label; the registry counts.

    Refused (exit 2) when a household of the ingestion already has a visit of another ingestion in that round.
    """
    from tasks.ingest.households import ingestion_rounds, reassign_round
    from tasks.platform.errors import BadInput
    from tasks.protection import audit

    catalog = open_runtime().catalog
    ingestion = catalog.get(ingestion_id)
    if ingestion is None:
        fail(f"no ingestion {ingestion_id}", EXIT_REJECTED)
    old = ingestion.survey_round or ", ".join(ingestion_rounds(catalog, ingestion_id)) or None
    try:
        moved = reassign_round(catalog, ingestion_id, new_round)
    except BadInput as refused:
        fail(str(refused), EXIT_REJECTED)
    audit.record(
        catalog,
        current_user() or "cli",
        "round_reassigned",
        ingestion_id,
        {"from": old, "to": new_round, "visits": moved},
    )
    typer.echo(f"{ingestion_id}: {moved} visits moved from {old or 'no round'} to {new_round}")


def progress(
    from_round: Annotated[
        str | None, typer.Option("--from", help="earlier round (default: the first)")
    ] = None,
    to_round: Annotated[str | None, typer.Option("--to", help="later round (default: the latest)")] = None,
    district: Annotated[str | None, typer.Option(help="only households of this district")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """How households seen in two rounds moved: status and risk-band transitions, improved, worsened."""
    from tasks.ingest.households import UnknownRound, rounds, transitions

    catalog = open_runtime().catalog
    known = [r["round"] for r in rounds(catalog)]
    if len(known) < 2 and (from_round is None or to_round is None):
        fail(f"progress needs two rounds with visits; there are {len(known)}", EXIT_REJECTED)
    try:
        result = transitions(catalog, from_round or known[0], to_round or known[-1], district)
    except UnknownRound as unknown:
        fail(str(unknown), EXIT_REJECTED)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    before, after = result["rounds"]
    counts = result["households"]
    typer.echo(f"{before} → {after}{f' in {district}' if district else ''}")
    typer.echo(
        f"households: {counts['from']} in {before}, {counts['to']} in {after}, {counts['both']} in both"
    )
    typer.echo(
        f"improved {result['improved']}, worsened {result['worsened']}, unchanged {result['unchanged']}"
    )
    for start, ends in result["transitions"].items():
        moves = ", ".join(f"{end} {n}" for end, n in ends.items())
        typer.echo(f"  {start:<20} → {moves}")
