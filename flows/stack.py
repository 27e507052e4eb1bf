"""`rtv up` / `rtv down`: the whole product on one machine — Prefect server, worker, deployments, demo data.

Each service runs in its own process group, so one signal stops it and its children (a Prefect worker
started from a script ignores SIGINT otherwise: `shared/stack.md`). Ctrl-C, SIGTERM or `rtv down` stop
everything; a PID file in the data directory lets `rtv down` find a detached stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tasks.platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POOL = "rtv-pool"  # must match prefect.yaml


@dataclass
class Service:
    """A long-running child process and how to tell it is ready."""

    name: str
    command: list[str]
    ready_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None


@dataclass
class Stack:
    """The services of one machine, started in order and stopped in reverse."""

    settings: Settings
    prefect_port: int = 4200
    dashboard_port: int = 8501
    services: list[Service] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        path = self.settings.data_dir / "run"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    def env(self) -> dict[str, str]:
        """Environment for every child: one Prefect server, its state kept with the data."""
        return os.environ | {"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.settings.data_dir / "prefect"),
                             "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_CLI_PROMPT": "false",
                             "RTV_DATA_DIR": str(self.settings.data_dir),
                             "RTV_PREFECT_UI_URL": os.environ.get("RTV_PREFECT_UI_URL",
                                                                  f"http://127.0.0.1:{self.prefect_port}")}

    def start(self, service: Service, timeout: float = 180) -> None:
        """Start a service in its own process group and wait until it answers."""
        service.log = self.run_dir / f"{service.name}.log"
        with open(service.log, "ab") as log:
            service.process = subprocess.Popen(service.command, cwd=ROOT, env=self.env(), stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)
        self.services.append(service)
        if service.ready_url:
            wait_for(service.ready_url, timeout, service)

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a one-off command against the stack (deploys, demo data); raises with its output on failure."""
        done = subprocess.run(list(command), cwd=ROOT, env=self.env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def stop(self, grace: float = 20) -> None:
        """SIGTERM every process group (newest first), then SIGKILL what is still there after `grace`."""
        for service in reversed(self.services):
            if service.process and service.process.poll() is None:
                os.killpg(service.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for service in reversed(self.services):
            if service.process is None:
                continue
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait()
        self.services.clear()


def wait_for(url: str, timeout: float, service: Service | None = None) -> None:
    """Poll a health URL until it answers 200; fail early if the service died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service and service.process and service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}; see {service.log}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def bring_up(stack: Stack, *, demo: bool, say: Callable[[str], None]) -> dict[str, str]:
    """Start the server and worker, deploy every flow, load demo data; returns where to look."""
    started = time.monotonic()
    rtv = str(BIN / "rtv")
    say("starting the Prefect server …")
    stack.start(Service("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                           "--port", str(stack.prefect_port)], f"{stack.api_url}/health"))
    say("deploying the flows …")
    pools = stack.run(str(BIN / "prefect"), "work-pool", "ls").stdout
    if POOL not in pools:
        stack.run(str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process")
    stack.run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
    stack.start(Service("worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL]))
    from tasks.protection.users import ensure_first_engineer
    from tasks.runtime import runtime_for

    password_file = stack.run_dir / "admin-password"
    password = ensure_first_engineer(runtime_for(stack.settings).catalog, password_file)
    if password:
        say(f"created the first dashboard user: admin / {password} (also in {password_file}, mode 0600)")
    say("starting the dashboard …")
    dashboard_url = f"http://127.0.0.1:{stack.dashboard_port}"
    stack.start(Service("dashboard", [rtv, "dashboard", "--port", str(stack.dashboard_port)],
                        f"{dashboard_url}/_stcore/health"))
    say("starting the API …")
    stack.start(Service("api", [rtv, "api", "--port", "8000"], "http://127.0.0.1:8000/health"))
    if demo:
        demo_file = stack.settings.data_dir / "demo" / "households.csv"
        if not demo_file.exists():
            demo_file.parent.mkdir(parents=True, exist_ok=True)
            say("generating 2,000 demo households …")
            stack.run(rtv, "generate", "--rows", "2000", "--seed", "7", "--bad-rate", "0.03", "--out", str(demo_file))
        say("ingesting the demo file …")
        stack.run(rtv, "ingest", str(demo_file), "--source", "demo")
        say("training a first model if there is none …")
        stack.run(rtv, "retrain")
    ready = time.monotonic() - started
    where = {
        "Dashboard": dashboard_url,
        "Prefect UI": f"http://127.0.0.1:{stack.prefect_port}",
        "API": "http://127.0.0.1:8000/docs",
        "Data zones": str(stack.settings.data_dir),
        "Logs": str(stack.run_dir),
        "Ready in": f"{ready:.0f} s",
    }
    (stack.run_dir / "stack.json").write_text(json.dumps({"pid": os.getpid(), **where}))
    return where


def stop_detached(settings: Settings, timeout: float = 60) -> bool:
    """Ask a running `rtv up` (found through its PID file) to stop; True if one was running."""
    pid_file = settings.data_dir / "run" / "stack.json"
    if not pid_file.exists():
        return False
    pid = json.loads(pid_file.read_text())["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid_file.unlink(missing_ok=True)
            return True
        time.sleep(0.5)
    raise RuntimeError(f"the stack (pid {pid}) did not stop within {timeout:.0f} s")
