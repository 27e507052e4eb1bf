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
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    return runtime_for(Settings())


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    from tasks.ingest.report import ImportReport

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
    from tasks.ingest.landing import EmptyUpload, TooLarge, land

    rt = _runtime()
    try:
        landed = land(rt, path, source_name=source or path.name, door="cli", filename=path.name,
                      submitted_by=os.environ.get("USER"))
    except (TooLarge, EmptyUpload) as bad:
        _fail(f"rejected: {bad}", EXIT_REJECTED)
    if not landed.is_duplicate:
        from tasks.protection import audit

        audit.record(rt.catalog, os.environ.get("USER") or "cli", "landed", landed.ingestion_id,
                     {"door": "cli", "size_bytes": landed.size_bytes})
    if landed.is_duplicate:
        from tasks.ingest.report import duplicate_report

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
    from tasks.ingest.generate import generate_households, write_households

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
    from tasks.workflows.scoring import ScoringError, score_file

    rt = _runtime()
    try:
        predictions, summary = score_file(rt, path.read_bytes())
    except ScoringError as bad:
        _fail(str(bad), EXIT_REJECTED)
    if out is not None:
        predictions.drop("household_pseudonym").write_csv(out)
        summary["written_to"] = str(out)
    typer.echo(json.dumps(summary, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))


@app.command()
def drift(
    ingestion_id: Annotated[str, typer.Argument(help="ingestion id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Drift of an ingestion's accepted rows against the champion's training snapshot (computed if not stored)."""
    from tasks.monitoring.drift import drift_of

    rt = _runtime()
    if rt.catalog.get(ingestion_id) is None:
        _fail(f"no ingestion {ingestion_id!r}")
    result = drift_of(rt, ingestion_id)
    if result is None:
        _fail("no champion model to compare with: run `rtv retrain` first")
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    typer.echo(f"drift: {'YES' if result['drift'] else 'no'}  score (max PSI) {result['score']}  rows {result['rows']}"
               f"  champion v{result['reference_version']}")
    for name, row in result["features"].items():
        figures = "  ".join(f"{k} {v}" for k, v in row.items() if k not in ("flag", "rows") and v != [])
        typer.echo(f"  {'!' if row['flag'] else ' '} {name:<38} {figures}")


@app.command()
def health(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Pipeline health 0-100 (runs, quality, model, system) and its band: healthy, degraded or unhealthy."""
    from tasks.monitoring.health import health_report

    report = health_report(_runtime()).as_dict()
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"{report['band']}: {report['score']}/100")
    for name, part in report["components"].items():
        typer.echo(f"  {name:<8} {part['score']:>5}  {part['detail']}")


model_app = typer.Typer(no_args_is_help=True, help="The registered vulnerability model.")
app.add_typer(model_app, name="model")


@model_app.command("list")
def model_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every registered version with its aliases and metrics."""
    rt = _runtime()
    from tasks.model.registry import has_store

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


keys_app = typer.Typer(no_args_is_help=True, help="Encryption keys: status, first key, rotation.")
app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init(
    print_env: Annotated[bool, typer.Option("--print-env", help="print new keys as environment lines instead")] = False,
) -> None:
    """Create the first keys: a 0600 key file (refuses to replace one), or lines for a secret manager."""
    from tasks.platform.settings import Settings
    from tasks.protection.keystore import DEFAULT_KEY_FILE
    from tasks.protection.protect import Keyring, write_key_file

    keyring = Keyring.generate()
    if print_env:
        typer.echo(f"RTV_FERNET_KEYS={keyring.fernet_keys[0]}\nRTV_PSEUDONYM_KEY={keyring.pseudonym_key}")
        return
    path = (Settings().key_file or DEFAULT_KEY_FILE).expanduser()
    if path.exists():
        _fail(f"{path} exists already; `rtv keys rotate` replaces keys without losing data")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_key_file(path, keyring)
    typer.echo(f"keys written to {path} (mode 0600); back it up: data sealed under it is unreadable without it")


@keys_app.command("status")
def keys_status() -> None:
    """Where the keys live and which key encrypts new data (fingerprints only, never keys)."""
    from tasks.workflows.rotation import fingerprint

    rt = _runtime()
    keyring = rt.keyring
    typer.echo(f"keys in: {rt.keys.store.where}")
    typer.echo(f"encrypting with: {fingerprint(keyring.fernet_keys[0])}")
    if len(keyring.fernet_keys) > 1:
        typer.echo(f"also reading with: {', '.join(fingerprint(k) for k in keyring.fernet_keys[1:])} "
                   "(a rotation is unfinished: run `rtv keys rotate`)")


@keys_app.command("rotate")
def keys_rotate(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Add a key, re-encrypt every stored file and sealed column under it, retire the old key (resumable)."""
    from tasks.protection import audit
    from tasks.protection.protect import ProtectionError
    from tasks.workflows.rotation import rotate_keys

    rt = _runtime()
    try:
        result = rotate_keys(rt.store, rt.keys.store, say=lambda line: typer.echo(line, err=True))
    except (ProtectionError, RuntimeError) as stopped:
        _fail(str(stopped))
    audit.record(rt.catalog, os.environ.get("USER") or "cli", "rotated", result.new_key,
                 {"retired": result.retired, "counts": result.counts, "resumed": result.resumed})
    summary = {"new_key": result.new_key, "retired": result.retired, "objects": result.counts,
               "resumed": result.resumed}
    typer.echo(json.dumps(summary, indent=2) if as_json else f"now encrypting with {result.new_key}; retired "
               f"{', '.join(result.retired) or 'nothing'}; {result.counts}")


@app.command("audit")
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
        _fail(f"--since takes a date like 2026-11-01, not {since!r}")
    found = audit.events(_runtime().catalog, since=start, actor=actor, action=action, limit=limit)
    rows = [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "target": e.target, "detail": e.detail}
            for e in found]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        typer.echo(f"{row['at'][:19]}  {row['actor']:<20} {row['action']:<10} {row['target'] or ''}")
    if not rows:
        typer.echo("no audit events match")


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
    if ingestion.raw_purged_at is not None:
        _fail(f"the raw file of {ingestion_id} was deleted after RTV_RETENTION_DAYS; it cannot run again")
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
    from tasks.platform.settings import Settings

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
def dashboard(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 for every interface)")] = "127.0.0.1",
) -> None:
    """Serve the Streamlit ops dashboard; sign in with a catalog user (`rtv up` creates `admin` on first start)."""
    _prefect_defaults()
    from dashboard import upload_limit_mb
    from tasks.platform.settings import Settings

    entry = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(entry), "--server.headless", "true",
               "--server.address", host, "--server.port", str(port), "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none",
               "--server.maxUploadSize", str(upload_limit_mb(Settings().max_upload_bytes))]
    typer.echo(f"dashboard on http://{host}:{port}", err=True)
    os.execv(sys.executable, command)  # signals reach Streamlit itself


@app.command()
def down() -> None:
    """Stop a stack started with `rtv up --detach`."""
    from flows.stack import stop_detached
    from tasks.platform.settings import Settings

    typer.echo("stopped" if stop_detached(Settings()) else "no stack was running")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on (keep 127.0.0.1 behind a TLS proxy)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes (each has its own rate limiter)")] = 1,
    access_log: Annotated[bool, typer.Option(help="log one line per request (no bodies)")] = True,
    forwarded_allow_ips: Annotated[str, typer.Option(help="proxies trusted for X-Forwarded-For")] = "127.0.0.1",
) -> None:
    """Serve the field-device REST API with uvicorn (OpenAPI at /docs)."""
    _prefect_defaults()
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, access_log=access_log,
                proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips, server_header=False)


users_app = typer.Typer(no_args_is_help=True, help="API and dashboard users.")
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="user name")],
    role: Annotated[str, typer.Option(help="field_officer, manager or engineer")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Create a user; the password is read from stdin, never from the command line."""
    if not password_stdin:
        _fail("pass --password-stdin and pipe the password in (it never goes on the command line)")
    from tasks.protection import audit
    from tasks.protection.users import UserError, add_user

    password = sys.stdin.readline().rstrip("\r\n")
    rt = _runtime()
    try:
        add_user(rt.catalog, name, role, password)
    except UserError as bad:
        _fail(str(bad))
    audit.record(rt.catalog, os.environ.get("USER") or "cli", "user_added", name, {"role": role})
    typer.echo(f"added {name} ({role})")


@users_app.command("list")
def users_list() -> None:
    """Every user with their role."""
    from sqlalchemy import select

    from tasks.platform.catalog.models import User

    with _runtime().catalog.session() as s:
        for user in s.scalars(select(User).order_by(User.name)):
            typer.echo(f"{user.name:<30} {user.role:<14} {'active' if user.active else 'inactive'}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
