"""Prefect task policies: I/O retries with exponential backoff and jitter; no input hashing of big frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.platform.errors import BadInput
from tasks.platform.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

IO_RETRIES = 3
IO_BACKOFF_SECONDS = 2.0
IO_JITTER = 0.5


def _never_retry_bad_input(_task: Task, _run: Any, state: Any) -> bool:
    """Bad input stays bad: retry only what may be transient."""
    try:
        state.result()
    except (BadInput, ValueError):
        return False
    except Exception:  # noqa: BLE001 - any other failure (network, storage, database) may pass on retry
        return True
    return False


def io_task(fn: F) -> Task:
    """A task touching storage, the catalog or the network: retried with exponential backoff and jitter."""
    return task(fn, retries=IO_RETRIES, retry_delay_seconds=exponential_backoff(backoff_factor=IO_BACKOFF_SECONDS),
                retry_jitter_factor=IO_JITTER, retry_condition_fn=_never_retry_bad_input, cache_policy=NO_CACHE)


def cpu_task(fn: F) -> Task:
    """A pure computation: no retries (it would fail the same way), no input hashing."""
    return task(fn, cache_policy=NO_CACHE)


def with_retry_policy(step: Task, settings: Settings) -> Task:
    """The same I/O task with the retry budget chosen in Settings."""
    return step.with_options(
        retries=settings.task_retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.retry_backoff_seconds),
        retry_jitter_factor=settings.retry_jitter_factor,
    )
