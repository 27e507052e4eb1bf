"""Deployments on a real Prefect server backed by PostgreSQL: prefect.yaml, schedules, a worker, kill and rerun."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import psycopg
import pytest

from tasks.ingest.generate import generate_households, generate_panel, write_households
from tasks.platform.deployments import (
    DAILY_MODEL_CHECK,
    DAILY_QUALITY,
    TRIGGERED,
    WEEKLY_ARCHIVE,
    WEEKLY_ETL,
    WORK_POOL,
)
from tasks.platform.processes import (
    BIN,
    NotReady,
    free_port,
    prefect_env,
    prefect_server,
    start_process,
    stop_process,
)
from tests.conftest import PG_ADMIN

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on PostgreSQL; yields the environment that points at it."""
    name = f"rtv_prefect_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    home, port = tmp_path_factory.mktemp("prefect-home"), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RTV_"))}
    env = prefect_env(
        home,
        port,
        clean
        | {"PREFECT_SERVER_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"},
    )
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(prefect_server(home, port, env=env))
            except NotReady as error:
                pytest.fail(
                    f"the PostgreSQL-backed Prefect server did not start: {error}\n{error.log_tail()}"
                )
            run(["prefect", "work-pool", "create", WORK_POOL, "--type", "process"], env)
            run(["prefect", "--no-prompt", "deploy", "--all"], env)  # from prefect.yaml, as engineers do
            yield env
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(command: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def data_env(server: dict[str, str], folder: Path, **extra: str) -> dict[str, str]:
    return server | {"RTV_DATA_DIR": str(folder / "data"), "RTV_KEY_FILE": str(folder / "keys.json")} | extra


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return start_process(
        [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL],
        log,
        cwd=ROOT,
        env=env | {"PREFECT_WORKER_QUERY_SECONDS": "1"},
    )


def in_process(env: dict[str, str], code: str) -> Any:
    """Run Python in a child with the test's environment (settings and the Prefect API come from env)."""
    done = run(["python", "-c", code], env)
    return json.loads(done.stdout.strip().splitlines()[-1])


LAND_AND_TRIGGER = """
import json, pathlib
from tasks.runtime import runtime_for
from tasks.platform.settings import Settings
from tasks.ingest.landing import land
from flows.dispatch import trigger_ingest
rt = runtime_for(Settings())
landed = land(rt, pathlib.Path({path!r}), source_name="deploy-test", door="upload")
print(json.dumps({{"ingestion_id": landed.ingestion_id, "flow_run_id": trigger_ingest(rt.catalog, landed.ingestion_id)}}))
"""

CATALOG_STATE = """
import json
from tasks.runtime import runtime_for
from tasks.platform.settings import Settings
i = runtime_for(Settings()).catalog.get({ingestion_id!r})
print(json.dumps({{"status": i.status, "rows": [i.rows_received, i.rows_accepted, i.rows_quarantined, i.rows_duplicate]}}))
"""


def wait_for_state(
    env: dict[str, str], flow_run_id: str, wanted: str, timeout: float = 150
) -> dict[str, Any]:
    code = f"import json; from flows.dispatch import flow_run_state; print(json.dumps(flow_run_state({flow_run_id!r})))"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = in_process(env, code)
        if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            assert state["type"] == wanted, state
            return state
        time.sleep(2)
    pytest.fail(f"flow run {flow_run_id} did not finish within {timeout} s")


def test_schedules_read_back_from_the_server(server: dict[str, str]) -> None:
    code = """
import json
from prefect.client.orchestration import get_client
from tasks.platform.deployments import ALL
with get_client(sync_client=True) as c:
    out = {}
    for name in ALL:
        d = c.read_deployment_by_name(name)
        out[name] = [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules]
print(json.dumps(out))
"""
    schedules = in_process(server, code)
    assert schedules[WEEKLY_ETL] == [["0 2 * * 0", "Africa/Kampala", True]]
    assert schedules[DAILY_QUALITY] == [["0 1 * * *", "Africa/Kampala", True]]
    assert schedules[DAILY_MODEL_CHECK] == [["0 3 * * *", "Africa/Kampala", True]]
    assert schedules[WEEKLY_ARCHIVE] == [["0 5 * * 0", "Africa/Kampala", True]]
    assert all(schedules[name] == [] for name in TRIGGERED)


def test_worker_runs_a_triggered_ingest_to_completion(server: dict[str, str], tmp_path: Path) -> None:
    env = data_env(server, tmp_path)
    path = tmp_path / "batch.csv"
    write_households(generate_households(400, seed=71, bad_rate=0.05).frame, path)
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        queued = in_process(env, LAND_AND_TRIGGER.format(path=str(path)))
        wait_for_state(env, queued["flow_run_id"], "COMPLETED")
    finally:
        stop_process(worker, grace=30)
    state = in_process(env, CATALOG_STATE.format(ingestion_id=queued["ingestion_id"]))
    assert state["status"] in ("completed", "completed_with_quarantine")
    assert state["rows"][0] == 400 == sum(state["rows"][1:])
    artifact = in_process(
        env,
        f"""
import json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
with get_client(sync_client=True) as c:
    found = c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["import-report-{queued["ingestion_id"]}"])))
print(json.dumps([a.type for a in found]))
""",
    )
    assert artifact == ["markdown"]


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    parent = psutil.Process(process.pid)
    for child in parent.children(recursive=True):
        child.kill()
    parent.kill()
    process.wait(30)


def _zone_rows(folder: Path, zone: str) -> tuple[int, int]:
    files = list((folder / "data" / zone).rglob("*.parquet"))
    return len(files), sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)


def test_killed_worker_then_rerun_matches_a_clean_run(server: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_households(generate_households(120_000, seed=72, bad_rate=0.02).frame, path)
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    env = data_env(server, killed_dir, RTV_PARTITION_ROWS="10000")
    worker = start_worker(env, tmp_path / "worker.log")
    queued = in_process(env, LAND_AND_TRIGGER.format(path=str(path)))
    deadline = time.monotonic() + 150
    while not any((killed_dir / "data" / "processed").rglob("*.parquet")):  # some partitions are written
        assert time.monotonic() < deadline, "the ingest never started writing partitions"
        time.sleep(0.2)
    _kill_tree(worker)  # SIGKILL: no hook runs, the run is left half done
    interrupted = in_process(env, CATALOG_STATE.format(ingestion_id=queued["ingestion_id"]))
    assert interrupted["status"] == "running"
    assert _zone_rows(killed_dir, "processed")[0] < 12

    rerun = run(["rtv", "rerun", queued["ingestion_id"], "--json"], env)
    report = json.loads(rerun.stdout)
    clean = json.loads(
        run(
            ["rtv", "ingest", str(path), "--json"], data_env(server, clean_dir, RTV_PARTITION_ROWS="10000")
        ).stdout
    )
    counts = ("rows_received", "rows_accepted", "rows_quarantined", "rows_duplicate")
    assert {k: report[k] for k in counts} == {k: clean[k] for k in counts}
    for zone in ("validated", "quarantine", "processed"):
        assert _zone_rows(killed_dir, zone) == _zone_rows(clean_dir, zone), zone
    identities = in_process(
        env,
        """
import json
from tasks.runtime import runtime_for
from tasks.platform.settings import Settings
print(json.dumps(runtime_for(Settings()).catalog.count_identities()))
""",
    )
    assert identities == report["rows_accepted"] + report["rows_quarantined"]
    old_run = in_process(
        env,
        f"import json; from flows.dispatch import flow_run_state; "
        f"print(json.dumps(flow_run_state({queued['flow_run_id']!r})))",
    )
    assert old_run["type"] == "CRASHED"  # the killed run no longer pretends to be running


REGISTRY_STATE = """
import json
from sqlalchemy import text
from tasks.runtime import runtime_for
from tasks.platform.settings import Settings
from tasks.ingest import households
rt = runtime_for(Settings())
with rt.catalog.engine.connect() as c:
    visits = c.execute(text("SELECT state, COUNT(*) FROM visits GROUP BY state ORDER BY state")).all()
    registry = c.execute(text(
        "SELECT first_round, last_round, visits, COUNT(*) FROM household_registry "
        "GROUP BY first_round, last_round, visits ORDER BY 1, 2, 3"
    )).all()
rounds = [{k: r[k] for k in ("round", "households", "visits")} for r in households.rounds(rt.catalog)]
progress = households.transitions(rt.catalog, rounds[0]["round"], rounds[-1]["round"]) if len(rounds) > 1 else None
print(json.dumps({"visits": [list(v) for v in visits], "registry": [list(r) for r in registry],
                  "rounds": rounds, "progress": progress}))
"""


def _pending_visits(catalog_db: Path) -> int:
    """Pending visits in a SQLite catalog, read beside the worker that writes it (0 before the table exists)."""
    import sqlite3

    if not catalog_db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(catalog_db, timeout=5)) as connection:
        try:
            return int(
                connection.execute("SELECT COUNT(*) FROM visits WHERE state = 'pending'").fetchone()[0]
            )
        except sqlite3.OperationalError:  # locked for a moment, or not migrated yet
            return 0


def test_killed_follow_up_round_then_rerun_keeps_the_registry_exact(
    server: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL while round 2's visits are pending, then `rtv rerun`: the registry equals a clean run's."""
    panel = generate_panel(20_000, 2, seed=73)
    paths = []
    for survey_round in panel.rounds:
        paths.append(tmp_path / f"{survey_round.label}.csv")
        write_households(survey_round.frame, paths[-1])
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    killed_env = data_env(server, killed_dir, RTV_PARTITION_ROWS="10000")
    clean_env = data_env(server, clean_dir, RTV_PARTITION_ROWS="10000")
    for env in (killed_env, clean_env):  # the baseline, the same in both
        run(["rtv", "ingest", str(paths[0]), "--round", "2025-baseline", "--json"], env)
    run(["rtv", "ingest", str(paths[1]), "--round", "2026-follow-up", "--json"], clean_env)

    worker = start_worker(killed_env, tmp_path / "worker.log")
    code = LAND_AND_TRIGGER.replace('door="upload")', 'door="upload", survey_round="2026-follow-up")')
    queued = in_process(killed_env, code.format(path=str(paths[1])))
    catalog_db = killed_dir / "data" / "catalog.db"
    deadline = time.monotonic() + 240
    while _pending_visits(catalog_db) == 0:  # killed after the visits are recorded, before they are final
        assert time.monotonic() < deadline, "round 2's visits were never seen pending"
        time.sleep(0.02)
    _kill_tree(worker)
    interrupted = in_process(killed_env, REGISTRY_STATE)
    assert dict(interrupted["visits"]).get("pending", 0) > 0  # the kill left round 2 half recorded
    assert [r["round"] for r in interrupted["rounds"]] == ["2025-baseline"]  # pending visits are not counted

    run(["rtv", "rerun", queued["ingestion_id"], "--json"], killed_env)
    after, clean = in_process(killed_env, REGISTRY_STATE), in_process(clean_env, REGISTRY_STATE)
    assert after == clean
    assert [r["round"] for r in after["rounds"]] == ["2025-baseline", "2026-follow-up"]
    assert after["visits"] == [["final", sum(r["visits"] for r in clean["rounds"])]]
    assert after["progress"]["households"]["both"] > 0
