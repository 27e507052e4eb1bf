"""Hand landed work to Prefect without blocking answers: one debounced sweep for many single surveys."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tasks.platform.catalog import Catalog

log = logging.getLogger("rtv.api")


class Dispatcher:
    """A background thread that queues one `ingest-landed` run per interval while single surveys arrive.

    If the Prefect API cannot be reached the landed bytes stay put: the next sweep (or the weekly ETL) takes
    them, and `/ready` reports Prefect as down until a trigger succeeds again.
    """

    def __init__(self, interval: float, sweep: Callable[[], str] | None = None) -> None:
        self.interval = interval
        self._sweep = sweep
        self._pending = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtv-dispatch", daemon=True)
        self.last_error: str | None = None
        self.triggered = 0
        self._failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def poke(self) -> None:
        """A single survey landed: a sweep is due within one interval."""
        self._pending.set()

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            wait = self.interval
            if self._pending.is_set():
                self._pending.clear()
                if not self._call(self._sweep_now, "ingest-landed"):
                    self._pending.set()  # try again, backing off up to a minute while Prefect is down
                    self._failures += 1
                    wait = min(60.0, self.interval * 2 ** min(self._failures, 6))
                else:
                    self._failures = 0

    def _sweep_now(self) -> None:
        if self._sweep is not None:
            self._sweep()
            return
        from flows.dispatch import trigger_sweep

        trigger_sweep()

    def trigger_file(self, catalog: Catalog, ingestion_id: str) -> bool:
        """Queue the ingest deployment for one landed file or batch now; False (logged) if Prefect is down."""
        from flows.dispatch import trigger_ingest

        return self._call(lambda: trigger_ingest(catalog, ingestion_id), "ingest")

    def _call(self, trigger: Callable[[], object], what: str) -> bool:
        started = time.monotonic()
        try:
            trigger()
        except Exception as error:  # noqa: BLE001 - Prefect down must never lose the 202: the sweep catches up
            self.last_error = type(error).__name__
            log.warning(
                "could not queue %s on the Prefect API (%s); landed bytes wait for the next sweep",
                what,
                type(error).__name__,
            )
            return False
        self.last_error = None
        self.triggered += 1
        log.debug("queued %s in %.2f s", what, time.monotonic() - started)
        return True
