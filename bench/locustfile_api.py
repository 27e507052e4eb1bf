"""Locust users for bench/api_load.py: each simulated device posts valid single surveys with new instance ids.

The instance id of every survey answered 202 is written to RTV_BENCH_ACCEPTED when the run stops, so the
bench can check each one is in the catalog (locust's own counts leave out requests cut off at the end).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import FastHttpUser, constant_throughput, events, task

TEMPLATES = [json.loads(line) for line in Path(os.environ["RTV_BENCH_SURVEYS"]).read_text().splitlines()]
TOKENS = Path(os.environ["RTV_BENCH_TOKENS"]).read_text().split()
PER_USER_RPS = float(os.environ.get("RTV_BENCH_USER_RPS", "12"))
_next_user = itertools.count()
ACCEPTED: list[str] = []


@events.quitting.add_listener
def _write_accepted(**_kwargs: object) -> None:
    Path(os.environ["RTV_BENCH_ACCEPTED"]).write_text("\n".join(ACCEPTED))


class Device(FastHttpUser):
    """One field device (its own officer account) sending surveys at a steady pace."""

    wait_time = constant_throughput(PER_USER_RPS)

    def on_start(self) -> None:
        self.number = next(_next_user)
        self.headers = {
            "Authorization": f"Bearer {TOKENS[self.number % len(TOKENS)]}",
            "Content-Type": "application/json",
        }
        self.sent = itertools.count()

    @task
    def post_survey(self) -> None:
        n = next(self.sent)
        survey = dict(TEMPLATES[(self.number + n) % len(TEMPLATES)])
        survey["instance_id"] = f"uuid:bench-{os.getpid()}-{self.number}-{n}"
        with self.client.post(
            "/api/v1/upload/survey-data",
            data=json.dumps(survey),
            headers=self.headers,
            name="POST survey",
            catch_response=True,
        ) as answer:
            if answer.status_code == 202:
                ACCEPTED.append(survey["instance_id"])
            else:
                answer.failure(f"HTTP {answer.status_code}")
