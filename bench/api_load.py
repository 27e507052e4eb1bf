"""Load test of the field-device API: locust (headless) posts single surveys to uvicorn on 127.0.0.1.

Creates a throw-away data dir, one officer account per simulated device, a Prefect server with the ingest
deployments (bench/common.py; PREFECT_API_URL reuses a running one), starts `rtv api`, runs locust for the
given time, then looks up every instance id answered 202 in the catalog (`durable`: all of them there, each
with its ingestion and raw object). Also reports CPU milliseconds per request of the server and of locust,
and the 1-minute load average before and after (the machine may be shared).

    .venv/bin/python bench/api_load.py --users 50 --user-rps 12 --seconds 30
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, VENV_BIN, PeakRss, prefect_server

from tasks.platform.processes import free_port as _free_port

PASSWORD = "bench-password-123"  # noqa: S105 - a throw-away user in the benchmark's own data dir


def _prepare(data: Path, users: int) -> tuple[list[str], Path]:
    """Users, their tokens and survey templates, written where locust reads them."""
    sys.path.insert(0, str(ROOT))

    from api.auth import Tokens
    from flows.dispatch import register_ingest_deployments
    from tasks.ingest.generate import generate_households, to_source_frame
    from tasks.platform.settings import Settings
    from tasks.protection.users import add_user
    from tasks.runtime import runtime_for

    register_ingest_deployments()
    settings = Settings()
    rt = runtime_for(settings)
    names = [f"device{i:03d}" for i in range(users)]
    for name in names:
        add_user(rt.catalog, name, "field_officer", PASSWORD)
    tokens = Tokens(settings)
    (data / "tokens.txt").write_text("\n".join(tokens.issue(n, "field_officer") for n in names))
    rows = to_source_frame(generate_households(500, seed=42).frame).to_dicts()
    (data / "surveys.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return names, data / "surveys.jsonl"


def _stats(prefix: Path) -> dict[str, float]:
    with open(f"{prefix}_stats.csv") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
        "max_ms": float(row["Max Response Time"]),
    }


def _count(names: list[str], accepted: list[str]) -> dict[str, int]:
    """Survey versions, landed ingestions and raw objects in the catalog, and how many acknowledged ids are there."""
    from sqlalchemy import func, select

    from tasks.platform.catalog.models import Ingestion, SurveySubmission
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    rt = runtime_for(Settings())
    found = 0
    with rt.catalog.session() as s:
        submissions = s.scalar(
            select(func.count()).select_from(SurveySubmission).where(SurveySubmission.submitted_by.in_(names))
        )
        landed = list(s.scalars(select(Ingestion.raw_key).where(Ingestion.source == "api-survey")))
        for start in range(0, len(accepted), 500):
            found += (
                s.scalar(
                    select(func.count())
                    .select_from(SurveySubmission)
                    .where(SurveySubmission.instance_id.in_(accepted[start : start + 500]))
                )
                or 0
            )
    return {
        "submissions": int(submissions or 0),
        "ingestions": len(landed),
        "raw_objects": sum(rt.store.exists(k) for k in landed),
        "acknowledged_found": int(found),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50, help="simulated devices (each its own account)")
    parser.add_argument("--user-rps", type=float, default=12.0, help="surveys per second per device")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--access-log", action="store_true", help="keep uvicorn's per-request log line")
    parser.add_argument(
        "--keep", action="store_true", help="keep the data dir (default: removed after counting)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="rtv-bench-api-"))  # same disk as the repo on this machine kind
    os.environ.update(
        {
            "RTV_DATA_DIR": str(folder / "data"),
            "RTV_KEY_FILE": str(folder / "keys.json"),
            "RTV_JWT_SECRET": secrets.token_urlsafe(48),
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )
    with prefect_server() as api_url:
        os.environ["PREFECT_API_URL"] = api_url
        names, templates = _prepare(folder, args.users)
        port = _free_port()
        command = [
            str(VENV_BIN / "rtv"),
            "api",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--access-log" if args.access_log else "--no-access-log",
        ]
        log = folder / "uvicorn.log"
        server = subprocess.Popen(command, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            while not _up(url):
                if server.poll() is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                time.sleep(0.3)
            rss = PeakRss(server.pid)
            prefix = folder / "locust"
            env = os.environ | {
                "RTV_BENCH_SURVEYS": str(templates),
                "RTV_BENCH_TOKENS": str(folder / "tokens.txt"),
                "RTV_BENCH_USER_RPS": str(args.user_rps),
                "RTV_BENCH_ACCEPTED": str(folder / "accepted.txt"),
            }
            load_before = os.getloadavg()[0]
            cpu_before = _cpu_seconds(server.pid)
            locust = subprocess.Popen(
                [
                    str(VENV_BIN / "locust"),
                    "-f",
                    str(ROOT / "bench/locustfile_api.py"),
                    "--headless",
                    "-u",
                    str(args.users),
                    "-r",
                    str(args.users),
                    "-t",
                    f"{args.seconds}s",
                    "--host",
                    url,
                    "--csv",
                    str(prefix),
                    "--only-summary",
                    "--stop-timeout",
                    "5",
                ],
                env=env,
                cwd=folder,
                stdout=subprocess.DEVNULL,
                stderr=(folder / "locust.log").open("wb"),
            )
            locust_cpu = _wait_cpu_seconds(locust)
            peak = rss.stop()
            load_after = os.getloadavg()[0]
            server_cpu = _cpu_seconds(server.pid) - cpu_before
            time.sleep(1)
        finally:
            server.terminate()
            server.wait(30)
        stats = _stats(prefix)
        acknowledged = (folder / "accepted.txt").read_text().split()
        counts = _count(names, acknowledged)
    # durable: every survey answered 202 is in the catalog, and every catalogued survey has its raw object
    result = {
        **stats,
        "acknowledged_202": len(acknowledged),
        **counts,
        "server_peak_rss_mb": round(peak / 1024**2),
        "workers": args.workers,
        "users": args.users,
        "durable": counts["acknowledged_found"] == len(acknowledged) > 0
        and counts["submissions"] == counts["ingestions"] == counts["raw_objects"],
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(len(acknowledged), 1), 2),
        "locust_cpu_ms_per_request": round(locust_cpu * 1000 / max(len(acknowledged), 1), 2),
        "load_avg_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "data": str(folder),
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    import psutil

    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def _wait_cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """Wait for a process to end; its user + system CPU seconds (sampled just before it exits)."""
    import psutil

    watched, used = psutil.Process(process.pid), 0.0
    while process.poll() is None:
        try:
            used = sum(watched.cpu_times()[:2])
        except psutil.Error:
            break
        time.sleep(0.2)
    return used


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
