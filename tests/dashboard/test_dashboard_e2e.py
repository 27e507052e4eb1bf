"""End to end in headless Chromium: a running stack, the real RTV file through the uploader, review, approve.

The stack is the product's own pieces (`tasks.stack`): a Prefect server, the `ingest` deployment from
prefect.yaml on a process worker, and `rtv dashboard`; no demo data, no API. Everything lives in a temporary
data directory, so nothing derived from the real file can reach the repository.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from dashboard.browser import browser_page, metrics, open_page, sign_in, wait_idle
from dashboard.labels import label
from tasks.ingest import contract, households
from tasks.ingest.generate import generate_panel, write_households
from tasks.ingest.zones import read_zone
from tasks.platform.deployments import WORK_POOL as POOL
from tasks.platform.processes import free_port
from tasks.platform.settings import Settings
from tasks.protection.users import add_user
from tasks.runtime import runtime_for
from tasks.stack import BIN, Service, Stack
from tasks.workflows.review import held_rows

pytestmark = [pytest.mark.slow, pytest.mark.server]  # a Prefect server, worker, dashboard and Chromium
MANAGER, PASSWORD = "clerk-manager", "e2e-manager-password"
FLOW_TIMEOUT_MS = 240_000  # landing to report: worker poll, flow subprocess start, ~4k rows through the flow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Prefect server + `ingest` deployment + worker + dashboard, on free ports, over a fresh data dir."""
    if not Path("/usr/bin/chromium").exists():
        pytest.fail(
            "Debian's chromium is missing: `apt-get install -y chromium` (.ci/services.sh installs it)"
        )
    base = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith(("RTV_", "PREFECT_"))]:
            if name != "RTV_REAL_DATA":
                mp.delenv(name)
        # the children inherit these through Stack.env()
        mp.setenv("RTV_DATA_DIR", str(base / "data"))
        mp.setenv("RTV_KEY_FILE", str(base / "keys.json"))
        mp.setenv("PREFECT_UI_ENABLED", "false")
        mp.setenv("PREFECT_WORKER_QUERY_SECONDS", "1")
        mp.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
        settings = Settings()
        add_user(runtime_for(settings).catalog, MANAGER, "manager", PASSWORD)
        stack = Stack(settings, prefect_port=free_port(), dashboard_port=free_port())
        prefect = str(BIN / "prefect")
        try:
            stack.start(
                Service(
                    "prefect-server",
                    [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(stack.prefect_port)],
                    f"{stack.api_url}/health",
                )
            )
            stack.run(prefect, "work-pool", "create", POOL, "--type", "process")
            stack.run(
                prefect, "--no-prompt", "deploy", "--name", "ingest"
            )  # from prefect.yaml, as engineers do
            stack.start(Service("worker", [prefect, "worker", "start", "--pool", POOL]))
            url = f"http://127.0.0.1:{stack.dashboard_port}"
            stack.start(
                Service(
                    "dashboard",
                    [str(BIN / "rtv"), "dashboard", "--port", str(stack.dashboard_port)],
                    f"{url}/_stcore/health",
                ),
                timeout=60,
            )
            yield {"url": url, "settings": settings, "run_dir": stack.run_dir}
        finally:
            stack.stop()


def _logs(run_dir: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in run_dir.glob("*.log")
    )


def test_upload_review_and_approve_in_the_browser(stack: dict[str, Any], real_csv: Path) -> None:
    rt = runtime_for(stack["settings"])
    with browser_page() as page:
        sign_in(page, stack["url"], MANAGER, PASSWORD)
        page.get_by_text("No households yet").wait_for()

        # Upload the real file through the uploader; the worker runs the ingest flow
        open_page(page, "Upload")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(real_csv))
        page.get_by_role("button", name="Import").click()  # waits until the upload enables it
        try:
            page.get_by_role("heading", name=re.compile("^Import report")).wait_for(timeout=FLOW_TIMEOUT_MS)
        except Exception:
            page.screenshot(path=stack["run_dir"] / "failure.png")
            sys.stderr.write(_logs(stack["run_dir"]))
            raise
        wait_idle(page)
        [ingestion] = rt.catalog.list_ingestions()
        assert ingestion.door == "upload" and ingestion.submitted_by == MANAGER and ingestion.flow_run_id
        assert ingestion.status == "completed_with_quarantine", ingestion.error
        received, accepted, quarantined = (
            ingestion.rows_received,
            ingestion.rows_accepted,
            ingestion.rows_quarantined,
        )
        assert received == 3897 and received == accepted + quarantined + ingestion.rows_duplicate
        report = metrics(page, "Rows received")
        assert report["Rows received"] == f"{received:,}"
        assert report["Accepted"] == f"{accepted:,}"
        assert report["Quarantined for review"] == f"{quarantined:,}"
        assert page.get_by_text(ingestion.id).first.is_visible()

        # The households are on the Overview
        open_page(page, "Overview")
        assert metrics(page, "Households assessed")["Households assessed"] == f"{accepted:,}"

        # The held rows wait in the Review queue; approve one
        open_page(page, "Review queue")
        assert metrics(page, "Rows waiting")["Rows waiting"] == f"{quarantined:,}"
        page.locator('[data-testid="stMultiSelect"]').filter(has=page.get_by_text("Rows", exact=True)).click()
        option = (
            page.get_by_role("option").filter(has_text=re.compile(r"^row \d+:")).first
        )  # not "Select all"
        row = int(re.match(r"row (\d+):", option.inner_text()).group(1))
        option.click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Approve").click()
        page.get_by_text(f"1 row(s) of {ingestion.id} approved").wait_for(timeout=60_000)
        wait_idle(page)
        assert metrics(page)["Rows waiting"] == f"{quarantined - 1:,}"

        # ...and it moved: decision in the catalog, the row in validated and processed, out of the queue
        [decision] = [r for r in rt.catalog.reviews(ingestion.id) if r.source_row == row]
        assert (decision.decision, decision.reviewer) == ("approved", MANAGER)
        assert row not in held_rows(rt, ingestion.id)["source_row"].to_list()
        assert held_rows(rt, ingestion.id).height == quarantined - 1
        processed = read_zone(rt.store, "processed", ingestion.id)
        assert processed.height == accepted + 1 and processed.filter(pl.col("source_row") == row).height == 1
        assert read_zone(rt.store, "validated", ingestion.id).filter(pl.col("source_row") == row).height == 1
        open_page(page, "Overview")
        assert metrics(page, "Households assessed")["Households assessed"] == f"{accepted + 1:,}"


def _upload(page: Any, rt: Any, path: Path, survey_round: str, run_dir: Path) -> None:
    """Upload one file through the uploader with its survey round; wait until the worker has ingested it."""
    before = {i.id for i in rt.catalog.list_ingestions()}
    open_page(page, "Upload")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    page.get_by_role("textbox", name="Survey round (optional)").fill(survey_round)
    page.get_by_role("button", name="Import").click()
    deadline = time.monotonic() + FLOW_TIMEOUT_MS / 1000
    while True:  # the page may still show the previous import's report: wait for this one in the catalog
        new = [i for i in rt.catalog.list_ingestions() if i.id not in before]
        if new and new[0].status in ("completed", "completed_with_quarantine", "failed", "rejected"):
            break
        if time.monotonic() > deadline:
            page.screenshot(path=run_dir / "failure-rounds.png")
            sys.stderr.write(_logs(run_dir))
            pytest.fail(f"{path.name} was not ingested within {FLOW_TIMEOUT_MS / 1000:.0f} s")
        time.sleep(1)
    assert new[0].status == "completed", new[0].error
    assert new[0].survey_round == survey_round
    wait_idle(page)


def _choose(page: Any, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def test_two_rounds_uploaded_show_their_transitions_on_progress(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    """Two synthetic rounds through the uploader: Progress shows the transitions a crosstab of the panel gives."""
    rt = runtime_for(stack["settings"])
    panel = generate_panel(300, 2, seed=31)
    baseline, follow_up = (tmp_path / "baseline.csv", tmp_path / "follow-up.csv")
    write_households(panel.rounds[0].frame, baseline)
    write_households(panel.rounds[1].frame, follow_up)
    with browser_page() as page:
        sign_in(page, stack["url"], MANAGER, PASSWORD)
        _upload(page, rt, baseline, "e2e-baseline", stack["run_dir"])
        _upload(page, rt, follow_up, "e2e-follow-up", stack["run_dir"])
        assert {"e2e-baseline", "e2e-follow-up"} <= {r["round"] for r in households.rounds(rt.catalog)}

        # the truth, independently: each household's observed status in both files, paired by household id
        def statuses(frame: pl.DataFrame) -> pd.DataFrame:
            return (
                frame.select(
                    pl.col("household_id").str.to_uppercase().alias("id"),
                    contract.progress_status_expr(pl.col(contract.TARGET)).alias("status"),
                )
                .unique("id", keep="first")
                .to_pandas()
            )

        progress = households.transitions(rt.catalog, "e2e-baseline", "e2e-follow-up")
        open_page(page, "Progress")
        _choose(page, "From round", "e2e-baseline")
        _choose(page, "To round", "e2e-follow-up")
        shown = metrics(page, "Improved")
        assert shown[label("both")] == f"{progress['households']['both']:,}"
        both = progress["households"]["both"]
        for name in ("improved", "worsened", "unchanged"):
            assert shown[name.capitalize()] == f"{progress[name]:,} ({progress[name] / both:.0%})"

        paired = statuses(panel.rounds[0].frame).merge(statuses(panel.rounds[1].frame), on="id")
        crosstab = pd.crosstab(paired["status_x"], paired["status_y"])
        # every row of both files was accepted (no faults injected), so the crosstab is the page's matrix
        assert progress["households"]["both"] == len(paired)
        assert {
            before: {after: int(n) for after, n in row.items() if n} for before, row in crosstab.iterrows()
        } == progress["transitions"]
