"""The task runner that processes partitions in parallel, chosen by `RTV_TASK_RUNNER`."""

from __future__ import annotations

import logging
import os

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from tasks.platform.settings import Settings


def partition_runner(settings: Settings) -> TaskRunner:
    """Threads (default: polars and GX release the GIL), local processes, or Dask (existing cluster or local)."""
    if settings.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=os.cpu_count() or 2)
    if settings.task_runner == "dask":
        from prefect_dask.task_runners import DaskTaskRunner

        logging.getLogger("distributed").setLevel(logging.WARNING)  # a line per worker event otherwise
        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.dask_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    # Two threads: a 2-core machine gains nothing from more, and each partition in flight holds ~1 GB at 250k rows.
    return ThreadPoolTaskRunner(max_workers=2)
