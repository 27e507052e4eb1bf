"""`make screenshots`: a PNG of every dashboard page, from synthetic demo data only, into docs/screenshots/.

Starts a throw-away stack (Prefect server, every deployment, a worker, the dashboard) over a temporary data
directory, generates two survey rounds of 2,000 demo households (`rtv generate --rounds 2`, never the real
file), ingests the baseline and trains a first model, uploads the follow-up round through the browser with
its "Survey round", then photographs each page as the engineer `admin`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from dashboard.browser import browser_page, open_page, sign_in, wait_charts, wait_idle
from tasks.platform.deployments import WORK_POOL as POOL
from tasks.platform.processes import free_port as _free_port
from tasks.platform.settings import Settings
from tasks.protection.users import ensure_first_engineer
from tasks.runtime import runtime_for
from tasks.stack import BIN, Service, Stack

# (sidebar title, file name); the order of the README gallery
PAGES = (
    ("Overview", "overview"),
    ("Pipeline runs", "pipeline-runs"),
    ("Data quality", "data-quality"),
    ("Review queue", "review-queue"),
    ("Model", "model"),
    ("Households", "households"),
    ("Upload", "upload"),
    ("Progress", "progress"),
    ("Follow-up worklist", "followups"),
)
WIDTH, MAX_HEIGHT = 1400, 4000


def _shoot(page: object, path: Path) -> None:
    """Grow the viewport to the page's height (Streamlit scrolls an inner container), then save a PNG."""
    wait_charts(page)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": WIDTH, "height": min(int(height) + 160, MAX_HEIGHT)})
    wait_charts(page)
    page.wait_for_timeout(1000)  # charts redraw at the new width
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": WIDTH, "height": 1000})


def _stack(base: Path) -> Stack:
    for name in [n for n in os.environ if n.startswith(("RTV_", "PREFECT_"))]:
        del os.environ[name]
    os.environ |= {
        "RTV_DATA_DIR": str(base / "data"),
        "RTV_KEY_FILE": str(base / "keys.json"),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    return Stack(Settings(), prefect_port=_free_port(), dashboard_port=_free_port())


def take(out: Path) -> list[Path]:
    """Bring up a demo stack, photograph every page into `out`, stop the stack; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtv-screenshots-") as folder:
        base = Path(folder)
        stack = _stack(base)
        prefect, rtv = str(BIN / "prefect"), str(BIN / "rtv")
        try:
            print("starting Prefect, the deployments, a worker and the dashboard …", flush=True)
            stack.start(
                Service(
                    "prefect-server",
                    [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(stack.prefect_port)],
                    f"{stack.api_url}/health",
                )
            )
            stack.run(prefect, "work-pool", "create", POOL, "--type", "process")
            stack.run(prefect, "--no-prompt", "deploy", "--all")
            stack.start(Service("worker", [prefect, "worker", "start", "--pool", POOL]))
            url = f"http://127.0.0.1:{stack.dashboard_port}"
            stack.start(
                Service(
                    "dashboard",
                    [rtv, "dashboard", "--port", str(stack.dashboard_port)],
                    f"{url}/_stcore/health",
                )
            )
            password = ensure_first_engineer(
                runtime_for(stack.settings).catalog, stack.run_dir / "admin-password"
            )
            print("loading a baseline of 2,000 demo households and training a first model …", flush=True)
            panel = base / "panel"
            stack.run(
                rtv, "generate", "--households", "2000", "--rounds", "2", "--seed", "7", "--bad-rate", "0.03",
                "--out", str(panel),
            )  # fmt: skip
            first, second = sorted(panel.iterdir())
            stack.run(rtv, "ingest", str(first), "--source", "demo baseline", "--round", "2025-baseline")
            stack.run(rtv, "retrain")
            print("uploading the follow-up round through the browser and taking the pictures …", flush=True)
            taken = []
            with browser_page(WIDTH, 1000) as page:
                sign_in(page, url, "admin", password or "")
                open_page(page, "Upload")
                page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(second))
                page.get_by_label("Source (optional)").fill("demo follow-up")
                page.get_by_role("textbox", name="Survey round (optional)").fill("2026-follow-up")
                page.get_by_role("button", name="Import").click()
                page.get_by_role("heading", name="Import report", exact=False).first.wait_for(timeout=240_000)
                wait_idle(page)
                for number, (title, name) in enumerate(PAGES, start=1):
                    open_page(page, title)
                    path = out / f"{number}-{name}.png"
                    _shoot(page, path)
                    taken.append(path)
                    print(f"  {path}", flush=True)
            return taken
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNG files")
    started = time.monotonic()
    taken = take(parser.parse_args().out.resolve())
    print(f"{len(taken)} screenshots in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
