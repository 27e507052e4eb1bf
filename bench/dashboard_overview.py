"""How fast the Overview renders with a million households in the predictions zone (target: ≤ 2 s after the first load).

Synthesises the predictions zone directly (no ingest: Parquet objects with the columns scoring writes, spread
over several ingestions and weeks) in a temporary data dir, then times the Overview page two ways:
AppTest (the script run alone: cold first run, then warm reruns) and headless Chromium against
`rtv dashboard` (sign-in to charts drawn, then returning to the page). Figures go to bench/README.md by hand.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")
USER, PASSWORD = "bench-engineer", "bench-engineer-password"


def synthesise(rows: int, ingestions: int, seed: int = 0) -> dict[str, int]:
    """Write `rows` scored households over `ingestions` ingestions, one a week, into the configured data dir."""
    from tasks.ingest import contract
    from tasks.ingest.zones import part_key, write_parquet
    from tasks.model.predictions import RISK_BANDS
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    rt = runtime_for(Settings())
    rng = np.random.default_rng(seed)
    places = [
        (d, c, f"{c} village {k}")
        for d, clusters in contract.DISTRICT_CLUSTERS.items()
        for c in clusters
        for k in range(1, 11)
    ]
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for i, size in enumerate(np.array_split(np.arange(rows), ingestions)):
        when = start + timedelta(weeks=i)
        ingestion_id = f"ing-{when:%Y%m%d-%H%M%S}-{secrets.token_hex(5)}"
        rt.catalog.add_ingestion(
            id=ingestion_id,
            source=f"bench batch {i + 1}",
            door="cli",
            sha256=secrets.token_hex(32),
            size_bytes=0,
            raw_key=f"raw/{ingestion_id}",
            status="completed",
            received_at=when,
            rows_received=len(size),
            rows_accepted=len(size),
            rows_quarantined=0,
            rows_duplicate=0,
        )
        n = len(size)
        place = rng.integers(0, len(places), n)
        p = rng.beta(2, 2.5, n)
        bands = np.select([p <= 0.3, p <= 0.6, p <= 0.8], list(RISK_BANDS[:3]), RISK_BANDS[3])
        status = np.where(
            p > 0.5,
            np.where(p > 0.75, "Severely Struggling", "Struggling"),
            np.where(p > 0.3, "At Risk", "On Track"),
        )
        frame = pl.DataFrame(
            {
                "ingestion_id": ingestion_id,
                "source_row": np.arange(n, dtype=np.int64),
                "household_pseudonym": [secrets.token_hex(16) for _ in range(n)],
                "district": [places[j][0] for j in place],
                "cluster": [places[j][1] for j in place],
                "village": [places[j][2] for j in place],
                "p_vulnerable": p,
                "expected_per_day": rng.gamma(2, 1.1, n),
                "predicted_status": status,
                "risk_band": bands,
                "model_version": "1",
            }
        ).with_columns(  # half the surveys carry the income module (observed status)
            pl.when(pl.Series(rng.random(n) < 0.5)).then(pl.col("predicted_status")).alias("observed_status")
        )
        write_parquet(rt.store, part_key("predictions", ingestion_id, 0), frame)
    return {"rows": rows, "ingestions": ingestions, "villages": len(places)}


def apptest(reruns: int) -> dict[str, float]:
    """Seconds for the Overview script: the first run (cold caches), then warm reruns (median and worst)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["user"] = {"name": USER, "role": "engineer"}
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    assert not at.exception and at.metric[0].value, [e.value for e in at.exception]
    warm = []
    for _ in range(reruns):
        started = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - started)
    shown = at.metric[0].value
    district = at.multiselect(key="ov_district").options[0]
    started = time.perf_counter()
    at.multiselect(key="ov_district").set_value([district]).run()
    filtered = time.perf_counter() - started
    return {
        "households_shown": shown,
        "first_s": first,
        "warm_median_s": statistics.median(warm),
        "warm_max_s": max(warm),
        "district_filter_s": filtered,
    }


def _charts_drawn(page: object, count: int = 6, timeout: float = 120_000) -> None:
    page.locator('[data-testid="stMetricValue"]').first.wait_for(timeout=timeout)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}", timeout=timeout
    )


def chromium(reruns: int) -> dict[str, float]:
    """Seconds in the browser: sign-in to the Overview drawn (cold), then back to it from another page (warm)."""
    import httpx
    import psutil

    from dashboard.browser import browser_page, open_page, wait_idle
    from tasks.platform.settings import Settings
    from tasks.protection.users import add_user
    from tasks.runtime import runtime_for

    add_user(runtime_for(Settings()).catalog, USER, "engineer", PASSWORD)
    port = 8765
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "rtv"), "dashboard", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        with browser_page(1400, 1000) as page:
            page.goto(url)
            page.get_by_label("User name").fill(USER)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            started = time.perf_counter()
            page.get_by_role("button", name="Sign in").click()
            _charts_drawn(page)
            first = time.perf_counter() - started
            wait_idle(page)
            warm = []
            for _ in range(reruns):
                open_page(page, "Pipeline runs")
                started = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"]').get_by_role(
                    "link", name="Overview", exact=True
                ).click()
                _charts_drawn(page)
                warm.append(time.perf_counter() - started)
                wait_idle(page)
        rss = sum(
            p.memory_info().rss for p in [psutil.Process(server.pid), *psutil.Process(server.pid).children()]
        )
        return {
            "first_s": first,
            "warm_median_s": statistics.median(warm),
            "warm_max_s": max(warm),
            "dashboard_rss_mb": rss / 2**20,
        }
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ingestions", type=int, default=8)
    parser.add_argument("--reruns", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtv-bench-dashboard-") as folder:
        for name in [n for n in os.environ if n.startswith("RTV_")]:
            del os.environ[name]
        os.environ |= {"RTV_DATA_DIR": f"{folder}/data", "RTV_KEY_FILE": f"{folder}/keys.json"}
        os.environ.pop(
            "PREFECT_API_URL", None
        )  # the Overview reads no Prefect; never start a temporary server
        started = time.perf_counter()
        made = synthesise(args.rows, args.ingestions)
        print(f"synthesised {made} in {time.perf_counter() - started:.1f} s", flush=True)
        print(
            "AppTest :",
            {k: round(v, 2) if isinstance(v, float) else v for k, v in apptest(args.reruns).items()},
            flush=True,
        )
        print("Chromium:", {k: round(v, 2) for k, v in chromium(args.reruns).items()}, flush=True)


if __name__ == "__main__":
    main()
