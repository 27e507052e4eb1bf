"""Drive the running dashboard in headless Chromium (Playwright): sign in, open pages, read metrics.

Used by the end-to-end test and `make screenshots`. Playwright is a dev dependency and drives Debian's
`chromium` (`RTV_CHROMIUM` overrides the path); nothing is downloaded (`playwright install` is never needed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
# Streamlit scrolls an inner container, so a full-page shot stops at the viewport: make the viewport tall
VIEWPORT = {"width": 1400, "height": 1800}


@contextmanager
def browser_page(width: int = VIEWPORT["width"], height: int = VIEWPORT["height"]) -> Iterator[Page]:
    """A fresh page in headless Chromium, closed (with the browser) when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("RTV_CHROMIUM", CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def wait_idle(page: Page, timeout: float = 60_000, quiet_ms: float = 1000) -> None:
    """Wait until Streamlit has stopped running the script: no "Running…/Stop" widget, no spinner, for `quiet_ms`.

    Streamlit shows its status widget only after a short delay, so one look can come too early; the page must
    stay quiet for a while instead.
    """
    busy = page.locator('[data-testid="stStatusWidget"], [data-testid="stSpinner"]')
    deadline = time.monotonic() + timeout / 1000
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if any(element.is_visible() for element in busy.all()):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_ms / 1000:
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"the dashboard was still running after {timeout / 1000:.0f} s")


def wait_charts(page: Page, timeout: float = 60_000) -> None:
    """Wait until every Plotly chart on the page has drawn (the chart library loads lazily, after the script)."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                                   .every(chart => chart.querySelector('.main-svg'))""",
        timeout=timeout,
    )


def sign_in(page: Page, url: str, user: str, password: str) -> None:
    """Open the dashboard and sign in; returns on the default page (Overview)."""
    page.goto(url)
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {user}").wait_for()
    wait_idle(page)


def open_page(page: Page, title: str) -> None:
    """Open a page from the sidebar navigation and wait for it to render."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title if title != "Upload" else "Upload a survey file").first.wait_for()
    wait_idle(page)


def metrics(page: Page, wait_for: str | None = None) -> dict[str, str]:
    """Every `st.metric` on the page: label → value as shown (after the metric `wait_for` has appeared)."""
    if wait_for:
        page.locator('[data-testid="stMetricLabel"]').filter(has_text=wait_for).first.wait_for()
    found = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found
