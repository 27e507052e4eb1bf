"""`rtv up | down | dashboard | api | health`: run the product on this machine and ask how it is doing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail, open_runtime, prefect_defaults

DASHBOARD_ENTRY = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


def _say(line: str) -> None:
    typer.echo(line, err=True)


def _show(where: dict[str, str]) -> None:
    typer.echo("\n".join(f"{name:<12} {value}" for name, value in where.items()))


def health(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Pipeline health 0-100 (runs, quality, model, system) and its band: healthy, degraded or unhealthy."""
    from tasks.monitoring.health import health_report

    report = health_report(open_runtime()).as_dict()
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"{report['band']}: {report['score']}/100")
    for name, part in report["components"].items():
        typer.echo(f"  {name:<8} {part['score']:>5}  {part['detail']}")


def up(
    demo: Annotated[
        bool, typer.Option(help="generate and ingest demo households, train a first model")
    ] = True,
    detach: Annotated[
        bool, typer.Option("--detach", help="start in the background; `rtv down` stops it")
    ] = False,
    port: Annotated[int, typer.Option(help="Prefect server port")] = 4200,
) -> None:
    """Bring the whole product up on this machine; Ctrl-C stops everything."""
    from tasks.platform.settings import Settings
    from tasks.stack import run_in_foreground, start_detached

    if detach:
        try:
            _show(start_detached(Settings(), port=port, demo=demo))
        except RuntimeError as broken:
            fail(str(broken))
        typer.echo("`rtv down` (or `make stop`) stops it.")
        return

    def ready(where: dict[str, str]) -> None:
        _show(where)
        typer.echo("Ctrl-C stops everything.")

    if not run_in_foreground(Settings(), port=port, demo=demo, say=_say, ready=ready):
        raise typer.Exit(1)


def down() -> None:
    """Stop a stack started with `rtv up --detach`."""
    from tasks.platform.settings import Settings
    from tasks.stack import stop_detached

    typer.echo("stopped" if stop_detached(Settings()) else "no stack was running")


def dashboard(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
    host: Annotated[
        str, typer.Option(help="address to listen on (0.0.0.0 for every interface)")
    ] = "127.0.0.1",
) -> None:
    """Serve the Streamlit ops dashboard; sign in with a catalog user (`rtv up` creates `admin` on first start)."""
    prefect_defaults()
    from tasks.platform.settings import Settings, upload_limit_mb

    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(DASHBOARD_ENTRY),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        str(upload_limit_mb(Settings().max_upload_bytes)),
    ]
    typer.echo(f"dashboard on http://{host}:{port}", err=True)
    os.execv(sys.executable, command)  # noqa: S606 - replaces this process, so signals reach Streamlit itself


def api(
    host: Annotated[
        str, typer.Option(help="address to listen on (keep 127.0.0.1 behind a TLS proxy)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes (each has its own rate limiter)")] = 1,
    access_log: Annotated[bool, typer.Option(help="log one line per request (no bodies)")] = True,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="proxies trusted for X-Forwarded-For")
    ] = "127.0.0.1",
) -> None:
    """Serve the field-device REST API with uvicorn (OpenAPI at /docs)."""
    prefect_defaults()
    import uvicorn

    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
    )
