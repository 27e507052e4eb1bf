"""Helpers shared by the benchmarks: a Prefect server for the run, and peak-RSS sampling of a process tree."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from tasks.platform import processes
from tasks.platform.processes import BIN as VENV_BIN

__all__ = ["ROOT", "VENV_BIN", "PeakRss", "prefect_server"]

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def prefect_server(port: int = 4299) -> Iterator[str]:
    """Use PREFECT_API_URL if set; otherwise start a throw-away SQLite-backed server for the benchmark."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    with (
        tempfile.TemporaryDirectory(prefix="rtv-bench-prefect-", ignore_cleanup_errors=True) as home,
        processes.prefect_server(Path(home), port) as url,
    ):
        yield url


class PeakRss:
    """Sample the resident memory of a process and all its children every 50 ms; keep the peak."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self._process, *self._process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak
