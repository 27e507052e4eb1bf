"""`rtv`: the engineer's command line. Reads Settings once, then calls flows and plain functions.

The commands live by group in cli/data.py, cli/model.py, cli/rounds.py, cli/keys.py, cli/users.py and
cli/stack.py; they are added here in the order `rtv --help` lists them.
"""

from __future__ import annotations

import sys

import typer

from cli import data, keys, model, rounds, stack, users

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Household-survey pipeline: ingest, inspect and operate.",
)

app.command()(data.ingest)
app.command()(data.report)
app.command()(data.generate)
app.command()(model.retrain)
app.command()(model.predict)
app.command()(model.drift)
app.command()(rounds.progress)
app.command()(stack.health)
app.command("audit")(users.audit_log)
app.command()(data.rerun)
app.command()(stack.up)
app.command()(stack.dashboard)
app.command()(stack.down)
app.command()(stack.api)
app.add_typer(model.model_app, name="model")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(users.users_app, name="users")
app.add_typer(rounds.rounds_app, name="rounds")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
