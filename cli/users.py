"""`rtv users add | assign | list` and `rtv audit`: who may sign in, where officers work, and what they did."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cli.common import EXIT_REJECTED, current_user, fail, open_runtime

users_app = typer.Typer(no_args_is_help=True, help="API and dashboard users.")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="user name")],
    role: Annotated[str, typer.Option(help="field_officer, manager or engineer")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Create a user; the password is read from stdin, never from the command line."""
    if not password_stdin:
        fail("pass --password-stdin and pipe the password in (it never goes on the command line)")
    from tasks.protection import audit
    from tasks.protection.users import UserError, add_user

    password = sys.stdin.readline().rstrip("\r\n")
    rt = open_runtime()
    try:
        add_user(rt.catalog, name, role, password)
    except UserError as bad:
        fail(str(bad))
    audit.record(rt.catalog, current_user() or "cli", "user_added", name, {"role": role})
    typer.echo(f"added {name} ({role})")


@users_app.command("assign")
def users_assign(
    name: Annotated[str, typer.Argument(help="a field officer's user name")],
    village: Annotated[
        list[str] | None,
        typer.Option(help="DISTRICT/CLUSTER/VILLAGE (repeat for several)", show_default=False),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="take these villages away instead")] = False,
) -> None:
    """Assign villages to a field officer (their follow-up worklist and, in production, their ids).

    Managers and engineers see every village and are not assigned any. A village is the triple
    DISTRICT/CLUSTER/VILLAGE, matched exactly: some village names occur in two clusters.
    """
    from tasks.protection import audit
    from tasks.protection.assignments import AssignmentError, BadVillage, assign, parse_village, unassign

    if not village:
        fail("name at least one village: --village DISTRICT/CLUSTER/VILLAGE", EXIT_REJECTED)
    try:
        villages = [parse_village(v) for v in village]
    except BadVillage as bad:
        fail(f"--village: {bad}", EXIT_REJECTED)
    rt = open_runtime()
    try:
        changed = (unassign if remove else assign)(rt.catalog, name, villages)
    except AssignmentError as bad:
        fail(str(bad))
    labels = [v.label() for v in changed]
    if changed:
        action = "villages_unassigned" if remove else "villages_assigned"
        audit.record(rt.catalog, current_user() or "cli", action, name, {"villages": labels})
    verb, unchanged = ("removed from", "not assigned") if remove else ("assigned to", "already assigned")
    typer.echo(f"{len(changed)} village(s) {verb} {name}" + (f": {', '.join(labels)}" if labels else ""))
    skipped = [v.label() for v in villages if v not in changed]
    if skipped:
        typer.echo(f"{unchanged}: {', '.join(dict.fromkeys(skipped))}")
    if not remove:
        from tasks.workflows.followups import villages_seen

        seen = villages_seen(rt.catalog, changed)
        unseen = [v.label() for v in changed if v not in seen]
        if unseen:
            typer.echo(f"note: no household was last seen in {', '.join(unseen)} yet (names match exactly)")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every user with their role, and the villages assigned to field officers."""
    from tasks.protection.assignments import all_assignments
    from tasks.protection.users import list_users

    catalog = open_runtime().catalog
    assigned = all_assignments(catalog)
    users = list_users(catalog)
    if as_json:
        rows = [
            {
                "name": u.name,
                "role": u.role,
                "active": u.active,
                "villages": [v.label() for v in assigned.get(u.name, [])],
            }
            for u in users
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for user in users:
        typer.echo(f"{user.name:<30} {user.role:<14} {'active' if user.active else 'inactive'}")
        for v in assigned.get(user.name, []):
            typer.echo(f"    village {v.label()}")


def audit_log(
    since: Annotated[str | None, typer.Option(help="only events on or after this date (YYYY-MM-DD)")] = None,
    actor: Annotated[str | None, typer.Option(help="only this user")] = None,
    action: Annotated[str | None, typer.Option(help="only this action, e.g. exported")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The audit log: who landed, viewed, exported, decrypted, approved or rotated what, newest first."""
    from datetime import UTC, datetime

    from tasks.protection import audit

    try:
        start = datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
    except ValueError:
        fail(f"--since takes a date like 2026-11-01, not {since!r}")
    found = audit.events(open_runtime().catalog, since=start, actor=actor, action=action, limit=limit)
    if as_json:
        rows = [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            }
            for e in found
        ]
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for e in found:
        typer.echo(f"{e.at.isoformat()[:19]}  {e.actor:<20} {e.action:<10} {e.target or ''}")
    if not found:
        typer.echo("no audit events match")
