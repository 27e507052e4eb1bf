"""S3 going away during an ingest: short outages are ridden out by retries, long ones fail cleanly and re-run."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from uuid import uuid4

import pytest
from typer.testing import CliRunner

from tests.conftest import BUCKET
from tests.support.tcp_proxy import SwitchableProxy

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def s3_behind_proxy(
    rtv_env: object, s3_bucket: object, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SwitchableProxy]:
    """Zones on moto reached through a proxy the test can switch off, as if moto were stopped."""
    target = urlparse(moto_endpoint)
    proxy = SwitchableProxy(target.hostname or "127.0.0.1", target.port or 80)
    proxy.up()
    monkeypatch.setenv("RTV_STORAGE", "s3")
    monkeypatch.setenv("RTV_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("RTV_S3_BUCKET", BUCKET)
    monkeypatch.setenv("RTV_S3_PREFIX", f"outage-{uuid4().hex[:12]}")
    yield proxy
    proxy.down()


def _landed(tmp_path: Path, rows: int = 400) -> tuple[Any, str, Path]:
    from tasks.ingest.generate import generate_households, write_households
    from tasks.ingest.landing import land
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    path = write_households(
        generate_households(rows, seed=21, bad_rate=0.05).frame, tmp_path / "households.csv"
    )
    rt = runtime_for(Settings())
    landed = land(rt, path, source_name="outage-test", door="cli", filename=path.name)
    return rt, landed.ingestion_id, path


def _max_task_attempts(flow_run_id: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return max(run.run_count for run in runs)


def test_a_ten_second_outage_is_ridden_out_by_retries(
    s3_behind_proxy: SwitchableProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.ingest import ingest

    monkeypatch.setenv("RTV_TASK_RETRIES", "4")  # waits of ~2, 4, 8, 16 s: at least 15 s with the jitter
    monkeypatch.setenv("RTV_RETRY_BACKOFF_SECONDS", "2")
    rt, ingestion_id, _ = _landed(tmp_path)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = ingest(ingestion_id)
        except Exception as error:  # noqa: BLE001 - the assertion below shows it
            outcome["error"] = error

    s3_behind_proxy.down()
    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(10)
    assert worker.is_alive(), f"the ingest gave up during the outage: {outcome}"
    s3_behind_proxy.up()
    worker.join(timeout=180)

    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report["status"] in ("completed", "completed_with_quarantine")
    assert report["rows_received"] == 400
    assert report["rows_accepted"] + report["rows_quarantined"] + report["rows_duplicate"] == 400
    ingestion = rt.catalog.get(ingestion_id)
    assert ingestion.status == report["status"]
    assert _max_task_attempts(ingestion.flow_run_id) >= 2  # it got through by retrying
    assert f"validated/{ingestion_id}/part-00000.parquet" in rt.store.list("validated")


def test_an_outage_past_the_retry_budget_fails_keeps_raw_and_reruns(
    s3_behind_proxy: SwitchableProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app
    from flows.ingest import ingest
    from tasks.protection.protect import decrypt_stream

    monkeypatch.setenv("RTV_TASK_RETRIES", "1")
    monkeypatch.setenv("RTV_RETRY_BACKOFF_SECONDS", "0.5")
    rt, ingestion_id, path = _landed(tmp_path)

    s3_behind_proxy.down()
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017, PT011 - botocore's connection error, whichever subclass
        ingest(ingestion_id)
    assert time.monotonic() - started < 60
    failed = rt.catalog.get(ingestion_id)
    assert failed.status == "failed" and failed.error

    s3_behind_proxy.up()
    with rt.store.open(failed.raw_key) as sealed:  # the landed bytes are intact
        assert (
            hashlib.sha256(b"".join(decrypt_stream(rt.keyring, sealed))).hexdigest()
            == hashlib.sha256(path.read_bytes()).hexdigest()
        )
    result = CliRunner().invoke(app, ["rerun", ingestion_id, "--json"])
    assert result.exit_code == 0, result.output
    done = rt.catalog.get(ingestion_id)
    assert done.status in ("completed", "completed_with_quarantine")
    assert done.rows_received == 400 and done.attempts == 2
