"""I/O tasks retry with exponential backoff, and the jitter really applies (a Prefect change once dropped it)."""

from __future__ import annotations

import time

import pytest
from prefect import flow
from prefect.tasks import exponential_backoff

from tasks.ingest.readers import RejectedFile
from tasks.platform.retry import IO_JITTER, IO_RETRIES, _never_retry_bad_input, io_task

pytestmark = pytest.mark.usefixtures("prefect_server")
BASE = 0.2


def test_io_task_policy_is_exponential_with_jitter() -> None:
    step = io_task(lambda: None)
    assert step.retries == IO_RETRIES and step.retry_jitter_factor == IO_JITTER
    assert step.retry_delay_seconds == [2.0, 4.0, 8.0]
    assert step.retry_condition_fn is _never_retry_bad_input


def test_retry_delays_are_jittered_around_the_exponential_schedule() -> None:
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) <= 4:
            raise ConnectionError("storage unreachable")
        return "ok"

    step = io_task(flaky).with_options(
        retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=BASE), retry_jitter_factor=1.0
    )

    @flow
    def run() -> str:
        return step()

    assert run() == "ok"
    delays = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    nominal = [BASE * 2**i for i in range(4)]
    ratios = [d / n for d, n in zip(delays, nominal, strict=True)]
    assert all(r >= 0.2 for r in ratios), ratios  # it did wait between attempts
    assert any(abs(r - 1.0) > 0.05 for r in ratios), f"delays follow the plain schedule: {ratios}"


def test_bad_input_is_not_retried() -> None:
    calls: list[int] = []

    def reject() -> None:
        calls.append(1)
        raise RejectedFile("the file is empty")

    step = io_task(reject).with_options(retry_delay_seconds=0)

    @flow
    def run() -> None:
        step()

    with pytest.raises(RejectedFile):
        run()
    assert len(calls) == 1
