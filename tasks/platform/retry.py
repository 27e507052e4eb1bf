"""Prefect task policies: I/O retries with exponential backoff and jitter; no input hashing of big frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff

from tasks.platform.errors import BadInput
from tasks.platform.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

# The decorator's budget is fixed at import, before any Settings are read: take Settings' defaults so the two
# cannot drift apart; `with_retry_policy` applies the configured values.
IO_RETRIES: int = Settings.model_fields["task_retries"].default
IO_BACKOFF_SECONDS: float = Settings.model_fields["retry_backoff_seconds"].default
IO_JITTER: float = Settings.model_fields["retry_jitter_factor"].default


def _never_retry_bad_input(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Bad input stays bad: retry only what may be transient."""
    try:
        state.result()
    except (BadInput, ValueError):
        return False
    except Exception:  # noqa: BLE001 - any other failure (network, storage, database) may pass on retry
        return True
    return False


def io_task(fn: Callable[P, R]) -> Task[P, R]:
    """A task touching storage, the catalog or the network: retried with exponential backoff and jitter."""
    return task(
        retries=IO_RETRIES,
        retry_delay_seconds=exponential_backoff(backoff_factor=IO_BACKOFF_SECONDS),
        retry_jitter_factor=IO_JITTER,
        retry_condition_fn=_never_retry_bad_input,
        cache_policy=NO_CACHE,
    )(fn)


def cpu_task(fn: Callable[P, R]) -> Task[P, R]:
    """A pure computation: no retries (it would fail the same way), no input hashing."""
    return task(cache_policy=NO_CACHE)(fn)


def with_retry_policy(step: Task[P, R], settings: Settings) -> Task[P, R]:
    """The same I/O task with the retry budget chosen in Settings."""
    return step.with_options(
        retries=settings.task_retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.retry_backoff_seconds),
        retry_jitter_factor=settings.retry_jitter_factor,
    )


class RetryPolicy:
    """The I/O tasks of one flow run with the retry budget chosen in Settings, each configured once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._configured: dict[Task[..., Any], Task[..., Any]] = {}

    def __call__(self, step: Task[P, R]) -> Task[P, R]:
        """`step` with the configured retries, exponential backoff and jitter."""
        if step not in self._configured:
            self._configured[step] = with_retry_policy(step, self.settings)
        return cast("Task[P, R]", self._configured[step])
