"""Group commit of single surveys: one thread lands whatever is waiting with one store sync and one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from api.intake import Outcome, submit_group
from tasks.runtime import Runtime

log = logging.getLogger("rtv.api")
GROUP_CAP = 256  # bounds one transaction and the latency of the first survey in it


@dataclass
class _Waiting:
    survey: Any
    user: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]


def _resolve(answers: list[tuple[_Waiting, Outcome | Exception]]) -> None:
    """Set the outcome of every waiting request of a group (on their event loop)."""
    for waiting, result in answers:
        if waiting.future.done():  # the client hung up meanwhile
            continue
        if isinstance(result, Exception):
            waiting.future.set_exception(result)
        else:
            waiting.future.set_result(result)


class Committer:
    """Requests hand their validated survey over and await its outcome; one thread commits them in groups.

    There is no artificial delay: while one group is being written the next one accumulates, so the group
    size follows the load (one survey when idle, dozens under load) and every survey pays a share of one
    fsync and one SQLite transaction instead of its own.
    """

    def __init__(self, rt: Runtime, cap: int = GROUP_CAP) -> None:
        self.rt, self.cap = rt, cap
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="rtv-committer", daemon=True)
        self.groups = 0
        self.surveys = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    async def submit(self, survey: Any, user: str) -> Outcome:
        """The outcome of one survey once its group is durable (or the error that failed it)."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(survey, user, loop, loop.create_future())
        self._queue.put(waiting)
        return await waiting.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            group: list[_Waiting] = []
            item: _Waiting | None = first
            while True:
                if item is None:
                    stopping = True
                elif not item.future.cancelled():  # a client that hung up before its turn is not landed
                    group.append(item)
                if stopping or len(group) >= self.cap:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._commit(group)

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            results: list[Outcome | Exception] = submit_group(self.rt, [(w.survey, w.user) for w in group])
        except Exception as error:  # noqa: BLE001 - the thread must outlive any one group
            log.error("survey group failed (%s)", type(error).__name__)
            results = [error] * len(group)
        self.groups += 1
        self.surveys += len(group)
        # one wake-up of the event loop per group, not one per request
        by_loop: defaultdict[asyncio.AbstractEventLoop, list[tuple[_Waiting, Outcome | Exception]]] = (
            defaultdict(list)
        )
        for waiting, result in zip(group, results, strict=True):
            by_loop[waiting.loop].append((waiting, result))
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, answers)
