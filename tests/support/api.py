"""Helpers for the API tests: a uvicorn subprocess on a free port, surveys, tokens, raw-zone checks."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tasks.platform.processes import NotReady, free_port, running

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
USERS = {
    "officer1": "field_officer",
    "officer2": "field_officer",
    "burst": "field_officer",
    "manager1": "manager",
    "engineer1": "engineer",
}


@contextmanager
def uvicorn_server(env: dict[str, str], log: Path, timeout: float = 60) -> Iterator[str]:
    """`rtv api` in a subprocess on a free 127.0.0.1 port; yields its base URL, stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "cli.main", "api", "--port", str(port)]
    try:
        with running(
            "uvicorn", command, log, ready_url=f"{url}/health", timeout=timeout, env=env, cwd=ROOT, grace=15
        ):
            yield url
    except NotReady as failed:
        raise RuntimeError(f"{failed}:\n{failed.log_tail(3000)}") from None


def surveys(n: int, seed: int, *, derived: bool = True) -> list[dict[str, Any]]:
    """Valid synthetic surveys with exact source headers and unique instance ids."""
    from tasks.ingest.contract import COLUMNS, Role
    from tasks.ingest.generate import generate_households, to_source_frame

    rows = to_source_frame(generate_households(n, seed=seed).frame).to_dicts()
    if not derived:
        dropped = {c.source for c in COLUMNS if c.has(Role.DERIVED)}
        rows = [{k: v for k, v in r.items() if k not in dropped} for r in rows]
    return rows


def raw_sha256(rt: Any, ingestion_id: str) -> str:
    """sha256 of the plaintext bytes landed for an ingestion (decrypted from raw/)."""
    from tasks.ingest.landing import read_raw

    return hashlib.sha256(read_raw(rt, rt.catalog.get(ingestion_id))).hexdigest()


def base_env(data: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment the server and the in-process flows share."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTV_") or k == "RTV_REAL_DATA"}
    env.update({"RTV_DATA_DIR": str(data / "data"), "RTV_KEY_FILE": str(data / "keys.json")}, **extra)
    return env


@contextmanager
def in_process_server(app: Any, timeout: float = 30) -> Iterator[str]:
    """An app served by uvicorn in a thread of this process on a free 127.0.0.1 port (lifespan included)."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(15)
