"""What every `rtv` command shares: Prefect defaults, the Runtime, error exits, the import report printer."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from tasks.runtime import Runtime

EXIT_REJECTED = 2


def prefect_defaults() -> None:
    """Quiet, patient defaults for running flows from a terminal (an ephemeral server needs ~15-25 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def open_runtime() -> Runtime:
    """The Runtime of the Settings in the environment (imported late: `rtv --help` stays fast)."""
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    return runtime_for(Settings())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def current_user() -> str | None:
    """Who runs the command, for the audit log."""
    return os.environ.get("USER")


def print_report(report: dict[str, Any], as_json: bool) -> None:
    """An import report as JSON or as the Markdown the flow publishes."""
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    from tasks.ingest.report import ImportReport

    typer.echo(ImportReport.model_validate(report).to_markdown())
