"""`rtv up` / `rtv down`: the whole product on one machine — Prefect server, worker, deployments, demo data.

Each service runs in its own process group (tasks/platform/processes.py), so one signal stops it and its
children. Ctrl-C, SIGTERM or `rtv down` stop everything; a PID file in the data directory lets `rtv down`
find a detached stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tasks.platform.deployments import WORK_POOL
from tasks.platform.processes import BIN, start_process, stop_processes, wait_until_ready
from tasks.platform.settings import Settings

__all__ = [
    "BIN",
    "Service",
    "Stack",
    "bring_up",
    "demo_files",
    "run_in_foreground",
    "start_detached",
    "stop_detached",
]

ROOT = Path(__file__).resolve().parents[1]
API_PORT = 8000


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

    @property
    def state_file(self) -> Path:
        """Where a running stack writes its PID and addresses (`rtv down` and `rtv up --detach` read it)."""
        return self.run_dir / "stack.json"

    def env(self) -> dict[str, str]:
        """Environment for every child: one Prefect server, its state kept with the data."""
        return os.environ | {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.settings.data_dir / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false",
            "RTV_DATA_DIR": str(self.settings.data_dir),
            "RTV_PREFECT_UI_URL": os.environ.get(
                "RTV_PREFECT_UI_URL", f"http://127.0.0.1:{self.prefect_port}"
            ),
        }

    def start(self, service: Service, timeout: float = 180) -> None:
        """Start a service in its own process group and wait until it answers (NotReady if it does not)."""
        service.log = self.run_dir / f"{service.name}.log"
        service.process = start_process(service.command, service.log, env=self.env(), cwd=ROOT)
        self.services.append(service)
        if service.ready_url:
            wait_until_ready(
                service.process, service.ready_url, name=service.name, timeout=timeout, log=service.log
            )

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a one-off command against the stack (deploys, demo data); raises with its output on failure."""
        done = subprocess.run(list(command), cwd=ROOT, env=self.env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def stopped(self) -> list[str]:
        """Names of the services that have exited."""
        return [s.name for s in self.services if s.process is not None and s.process.poll() is not None]

    def stop(self, grace: float = 20) -> None:
        """SIGTERM every process group (newest first), then SIGKILL what is still there after `grace`."""
        stop_processes([s.process for s in reversed(self.services) if s.process is not None], grace)
        self.services.clear()


DEMO_HOUSEHOLDS, DEMO_ROUNDS = 2000, 2


def demo_files(
    data_dir: Path,
    run: Callable[..., object],
    say: Callable[[str], None] = lambda _: None,
) -> list[Path]:
    """The demo panel's round files in round order, generated with `run` only when they are not there yet."""
    directory = data_dir / "demo"

    def found() -> list[Path]:
        # households-<YYYY-Qn>.csv: the name order is the round order
        return sorted(directory.glob("households-*.csv"))

    if len(found()) < DEMO_ROUNDS:  # write_panel writes every round or none: nothing half-made to keep
        say(f"generating {DEMO_HOUSEHOLDS:,} demo households over {DEMO_ROUNDS} rounds …")
        run(
            str(BIN / "rtv"),
            "generate",
            "--households",
            str(DEMO_HOUSEHOLDS),
            "--rounds",
            str(DEMO_ROUNDS),
            "--seed",
            "7",
            "--bad-rate",
            "0.03",
            "--out",
            str(directory),
        )
    return found()


def bring_up(stack: Stack, *, demo: bool, say: Callable[[str], None]) -> dict[str, str]:
    """Start the server and worker, deploy every flow, load demo data; returns where to look."""
    started = time.monotonic()
    rtv, prefect = str(BIN / "rtv"), str(BIN / "prefect")
    say("starting the Prefect server …")
    stack.start(
        Service(
            "prefect-server",
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(stack.prefect_port)],
            f"{stack.api_url}/health",
        )
    )
    say("deploying the flows …")
    pools = stack.run(prefect, "work-pool", "ls").stdout
    if WORK_POOL not in pools:
        stack.run(prefect, "work-pool", "create", WORK_POOL, "--type", "process")
    stack.run(prefect, "--no-prompt", "deploy", "--all")
    stack.start(Service("worker", [prefect, "worker", "start", "--pool", WORK_POOL]))
    from tasks.protection.users import ensure_first_engineer
    from tasks.runtime import runtime_for

    password_file = stack.run_dir / "admin-password"
    password = ensure_first_engineer(runtime_for(stack.settings).catalog, password_file)
    if password:
        say(f"created the first dashboard user: admin / {password} (also in {password_file}, mode 0600)")
    say("starting the dashboard …")
    dashboard_url = f"http://127.0.0.1:{stack.dashboard_port}"
    stack.start(
        Service(
            "dashboard",
            [rtv, "dashboard", "--port", str(stack.dashboard_port)],
            f"{dashboard_url}/_stcore/health",
        )
    )
    say("starting the API …")
    stack.start(Service("api", [rtv, "api", "--port", str(API_PORT)], f"http://127.0.0.1:{API_PORT}/health"))
    if demo:
        for demo_file in demo_files(stack.settings.data_dir, stack.run, say):
            # a file ingested by an earlier start is a duplicate_file: exit 0, nothing stored twice
            say(f"ingesting {demo_file.name} …")
            stack.run(rtv, "ingest", str(demo_file), "--source", "demo")
        say("training a first model if there is none …")
        stack.run(rtv, "retrain")
    ready = time.monotonic() - started
    where = {
        "Dashboard": dashboard_url,
        "Prefect UI": f"http://127.0.0.1:{stack.prefect_port}",
        "API": f"http://127.0.0.1:{API_PORT}/docs",
        "Data zones": str(stack.settings.data_dir),
        "Logs": str(stack.run_dir),
        "Ready in": f"{ready:.0f} s",
    }
    stack.state_file.write_text(json.dumps({"pid": os.getpid(), **where}))
    return where


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack the same way Ctrl-C does


def run_in_foreground(
    settings: Settings,
    *,
    port: int,
    demo: bool,
    say: Callable[[str], None],
    ready: Callable[[dict[str, str]], None],
) -> bool:
    """Bring the stack up, hand `ready` where to look, serve until Ctrl-C, SIGTERM or a service dies, stop it all.

    Progress and problems go to `say`; returns False when the stack could not come up.
    """
    stack = Stack(settings, prefect_port=port)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        ready(bring_up(stack, demo=demo, say=say))
        while not stack.stopped():
            time.sleep(1)
        say(f"{', '.join(stack.stopped())} stopped unexpectedly; see {stack.run_dir}")
    except KeyboardInterrupt:
        say("stopping …")
    except RuntimeError as broken:  # NotReady included: a service died or never answered
        say(f"error: {broken}")
        return False
    finally:
        stack.stop()
        stack.state_file.unlink(missing_ok=True)
    return True


def start_detached(settings: Settings, *, port: int, demo: bool) -> dict[str, str]:
    """Start `rtv up` in its own session, wait until it is ready; returns where to look (RuntimeError if it died)."""
    run_dir = settings.data_dir / "run"
    log, state = run_dir / "up.log", run_dir / "stack.json"
    state.unlink(missing_ok=True)
    process = start_process(
        [str(BIN / "rtv"), "up", f"--port={port}", "--demo" if demo else "--no-demo"], log
    )
    while not state.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the stack did not come up; see {log}")
        time.sleep(1)
    return {k: v for k, v in json.loads(state.read_text()).items() if k != "pid"}


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
