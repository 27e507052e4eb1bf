"""`rtv users add | list` and `rtv audit`: who may sign in, and what they did."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cli.common import current_user, fail, open_runtime

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


@users_app.command("list")
def users_list() -> None:
    """Every user with their role."""
    from tasks.protection.users import list_users

    for user in list_users(open_runtime().catalog):
        typer.echo(f"{user.name:<30} {user.role:<14} {'active' if user.active else 'inactive'}")


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
