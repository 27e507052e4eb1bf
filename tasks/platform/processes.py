"""Child processes that serve HTTP: start one in its own process group, wait for its health URL, stop it.

One harness for `rtv up` (tasks/stack.py), the benchmarks and the tests' emulators. A process group lets
one signal reach a service and its children (a Prefect worker started from a script ignores SIGINT
otherwise: `shared/stack.md`); the log file is where a failed start is explained.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent  # the virtualenv's scripts: prefect, rtv, moto_server
LOOPBACK = "127.0.0.1"


class NotReady(RuntimeError):
    """A started process exited, or did not answer its health URL in time."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the process' log, or an empty string when there is none."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-chars:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def start_process(
    command: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `command` in a new process group with stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def answers(url: str, *, any_status: bool = False) -> bool:
    """Whether `url` answers 200 (or any HTTP status with `any_status`: an auth error is still an answer)."""
    try:
        status = httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return False
    return any_status or status == 200


def wait_until_ready(
    process: subprocess.Popen[bytes],
    url: str,
    *,
    name: str,
    timeout: float = 180,
    log: Path | None = None,
    any_status: bool = False,
) -> None:
    """Poll `url` until it answers; raise NotReady as soon as the process exits or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise NotReady(f"{name} exited with {process.returncode}; see {log}", log)
        if answers(url, any_status=any_status):
            return
        if time.monotonic() > deadline:
            raise NotReady(f"{url} did not answer within {timeout:.0f} s", log)
        time.sleep(0.25)


def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group the process leads (its children too), or the process alone if it leads none."""
    try:
        # a group whose id is the child's pid can only be the one that child created
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        if process.poll() is None:
            process.send_signal(sig)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float = 20) -> None:
    """SIGTERM every process group in the order given, then SIGKILL what is still there after `grace` seconds."""
    for process in processes:
        _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL)
            process.wait()


def stop_process(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited after `grace` seconds."""
    stop_processes([process], grace)


@contextmanager
def running(
    name: str,
    command: Sequence[str],
    log: Path,
    *,
    ready_url: str | None = None,
    timeout: float = 180,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    any_status: bool = False,
    grace: float = 10,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until the block ends, once `ready_url` answers; raises NotReady (process stopped) if not."""
    process = start_process(command, log, env=env, cwd=cwd)
    try:
        if ready_url is not None:
            wait_until_ready(process, ready_url, name=name, timeout=timeout, log=log, any_status=any_status)
        yield process
    finally:
        stop_process(process, grace)


def prefect_api_url(port: int) -> str:
    """The API URL of a Prefect server on 127.0.0.1:`port`."""
    return f"http://{LOOPBACK}:{port}/api"


def prefect_env(home: Path, port: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this environment) pointed at a quiet Prefect server on `port` whose state is in `home`."""
    return dict(os.environ if base is None else base) | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": prefect_api_url(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
    }


@contextmanager
def prefect_server(
    home: Path,
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
    log: Path | None = None,
) -> Iterator[str]:
    """A throw-away `prefect server start` on 127.0.0.1:`port` (state in `home`); yields its API URL."""
    command = [str(BIN / "prefect"), "server", "start", "--host", LOOPBACK, "--port", str(port)]
    url = prefect_api_url(port)
    with running(
        "the Prefect server",
        command,
        log or home / "prefect-server.log",
        ready_url=f"{url}/health",
        timeout=timeout,
        env=prefect_env(home, port, env),
        grace=30,
    ):
        yield url
