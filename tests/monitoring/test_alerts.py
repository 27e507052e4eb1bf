"""Alert mail through a real SMTP server on 127.0.0.1: every alert path, grouping of storms, the flow failure hook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasks.monitoring.alerts import Alert, flow_failure, flush, notify
from tasks.monitoring.schedules import ScheduledRun, check_schedules
from tasks.monitoring.thresholds import check_ingestion
from tasks.platform.catalog.monitoring import alerts_sent
from tasks.platform.processes import free_port
from tasks.platform.settings import Settings
from tasks.runtime import Runtime, runtime_for
from tests.support.smtp import Inbox, point_alerts_at, smtp_server

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def inbox(rtv_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_server() as (port, messages):
        point_alerts_at(monkeypatch, port)
        yield messages


@pytest.fixture
def rt(inbox: Inbox) -> Runtime:
    return runtime_for(Settings())


def failure(run: int) -> Alert:
    return flow_failure(
        "ingest",
        f"brave-otter-{run}",
        f"0000{run:04d}-aaaa-bbbb-cccc-dddddddddddd",
        "Failed",
        f"Flow run encountered an exception: OSError: storage unreachable after 3 retries "
        f"(ing-20261126-0800{run:02d}-4f3a2b1c0d)",
        {"ingestion_id": f"ing-20261126-0800{run:02d}-x"},
    )


def test_flow_failure_mail_says_what_failed_with_a_link(inbox: Inbox, rt: Runtime) -> None:
    assert notify(rt, failure(1), NOW) == "sent"
    [message], [body] = inbox.messages, inbox.bodies()
    assert inbox.subjects() == [
        "[RTV] ingest flow failed: Flow run encountered an exception: OSError: storage "
        "unreachable after 3 retries (ing-20261126-080001-4f3a2b1c0d)"
    ]
    assert inbox.recipients == [["ops@example.org", "lead@example.org"]]
    assert "The Prefect flow run brave-otter-1 of 'ingest' ended Failed." in body
    assert "  ingestion_id: ing-20261126-080001-x" in body and "  state: Failed" in body
    assert (
        "Dashboard: http://dash.example:8501/pipeline_runs" in body
        and "Time: 2026-11-26 08:00:00 UTC" in body
    )
    assert message["From"] == "rtv-pipeline@localhost"


def test_a_storm_of_20_identical_failures_is_one_mail_then_one_summary(inbox: Inbox, rt: Runtime) -> None:
    outcomes = [notify(rt, failure(n), NOW + timedelta(seconds=n)) for n in range(20)]
    assert outcomes == ["sent"] + ["grouped"] * 19
    assert len(inbox.messages) == 1
    assert flush(rt, NOW + timedelta(minutes=30)) == 0  # the window is still open
    assert flush(rt, NOW + timedelta(minutes=61)) == 1
    assert flush(rt, NOW + timedelta(minutes=62)) == 0  # owed once, sent once
    subject, body = inbox.subjects()[1], inbox.bodies()[1]
    assert subject.startswith("[RTV] 19 more: ingest flow failed: Flow run encountered an exception: OSError")
    assert "  grouped events: 19" in body and "  events of this kind in all: 20" in body
    assert "arrived between 2026-11-26 08:00 and 08:00 UTC" in body
    assert [a.events for a in alerts_sent(rt.catalog)] == [19, 1]
    other = flow_failure("weekly-etl", "calm-fox", "1", "Crashed", "worker lost", {})
    assert (
        notify(rt, other, NOW + timedelta(minutes=63)) == "sent"
    )  # another kind is not held back by the storm
    assert notify(rt, failure(99), NOW + timedelta(minutes=64)) == "sent"  # the window closed: mailed again
    assert len(inbox.messages) == 4


def test_repeats_grouped_while_the_window_was_open_ride_on_the_next_mail(inbox: Inbox, rt: Runtime) -> None:
    notify(rt, failure(1), NOW)
    notify(rt, failure(2), NOW + timedelta(minutes=5))
    assert (
        notify(rt, failure(3), NOW + timedelta(minutes=70)) == "sent"
    )  # flush inside notify sends nothing twice
    bodies = inbox.bodies()
    assert len(bodies) == 2 and "Also 1 more alert(s) of this kind since 2026-11-26 08:05 UTC" in bodies[1]


def _finished_ingestion(
    rt: Runtime,
    n: int,
    source: str,
    received: int,
    quarantined: int,
    completeness: float,
    outcomes: list[dict[str, Any]] = (),
) -> str:
    ingestion_id = f"ing-20261126-0{n}0000-{source}"
    rt.catalog.add_ingestion(
        id=ingestion_id,
        source=source,
        door="cli",
        sha256=f"{n:064d}",
        size_bytes=10,
        raw_key=f"raw/{ingestion_id}",
        status="landed",
        received_at=NOW - timedelta(hours=10 - n),
    )
    status = "completed_with_quarantine" if quarantined else "completed"
    rt.catalog.record_result(
        ingestion_id,
        status=status,
        rule_outcomes=list(outcomes),
        metrics={},
        objects=[],
        report={
            "rows_received": received,
            "rows_accepted": received - quarantined,
            "rows_quarantined": quarantined,
            "rows_duplicate": 0,
            "completeness": completeness,
        },
    )
    return ingestion_id


def test_quality_breaches_are_mailed_with_their_numbers(inbox: Inbox, rt: Runtime) -> None:
    for n in range(1, 4):
        assert check_ingestion(rt, _finished_ingestion(rt, n, "kanungu", 1000, 20, 0.98)) == []
    assert inbox.messages == []
    bad = _finished_ingestion(
        rt,
        5,
        "kanungu",
        150,
        30,
        0.91,
        [
            {
                "rule": "household_size.range",
                "expectation": "expect_column_values_to_be_between",
                "column": "household_size",
                "unexpected_count": 12,
                "element_count": 150,
            }
        ],
    )
    breaches = check_ingestion(rt, bad)
    assert [b["check"] for b in breaches] == [
        "completeness",
        "quarantine_rate",
        "rule:household_size.range",
        "volume",
    ]
    subjects, bodies = inbox.subjects(), inbox.bodies()
    assert subjects == [
        f"[RTV] completeness 0.91 (limit 0.95) in {bad}",
        f"[RTV] quarantine_rate 0.2 (limit 0.1) in {bad}",
        f"[RTV] rule:household_size.range 0.92 (limit 0.95) in {bad}",
        f"[RTV] volume 150 (limit 200.0) in {bad}",
    ]
    assert "30 of 150 rows held for review" in bodies[1] and "12 of 150 rows fail" in bodies[2]
    assert "whose last 3 ingestions had a median of 1,000" in bodies[3]
    assert all("Dashboard: http://dash.example:8501/data_quality" in b for b in bodies)


def test_failed_and_late_scheduled_runs_are_mailed(inbox: Inbox, rt: Runtime) -> None:
    runs = [
        ScheduledRun(
            "weekly-etl/weekly-etl",
            "FAILED",
            "Failed",
            NOW - timedelta(hours=6),
            "swift-heron",
            "Flow run encountered an exception: KeyError",
        ),
        ScheduledRun(
            "daily-quality/daily-quality", "SCHEDULED", "Late", NOW - timedelta(minutes=95), "odd-mole"
        ),
        ScheduledRun("archive/weekly-archive", "COMPLETED", "Completed", NOW - timedelta(days=2), "ok-run"),
        ScheduledRun(
            "retrain/daily-model-check", "SCHEDULED", "Scheduled", NOW - timedelta(minutes=5), "soon"
        ),
    ]
    assert [(b["check"], b["subject"]) for b in check_schedules(rt, NOW, runs)] == [
        ("run_failed", "weekly-etl/weekly-etl"),
        ("run_late", "daily-quality/daily-quality"),
    ]
    assert inbox.subjects() == [
        "[RTV] run_failed Failed (limit Completed) in weekly-etl/weekly-etl",
        "[RTV] run_late 95 (limit 60) in daily-quality/daily-quality",
    ]
    assert "ended Failed: Flow run encountered an exception: KeyError" in inbox.bodies()[0]
    assert "has not started after 95 minutes" in inbox.bodies()[1]


def test_drift_alert_names_the_features_and_figures(inbox: Inbox, rt: Runtime) -> None:
    import polars as pl

    from tasks.ingest.generate import generate_households
    from tasks.monitoring.drift import drift_alert
    from tasks.monitoring.drift_stats import detect, reference_profile

    frame = generate_households(1200, seed=4).frame
    result = detect(
        reference_profile(frame, "3"),
        generate_households(500, seed=5).frame.with_columns(
            (pl.col("household_size") * 1.3).round().cast(pl.Int64),
            pl.col("household_income") * 0.5,
            pl.col("income_consumption_residues_per_day") * 0.5,
        ),
    ).as_dict()
    assert notify(rt, drift_alert(result, "ing-20261126-080000-abc", "ingestion"), NOW) == "sent"
    # the income columns moved too: programme change, named beside the drift but not as drift
    assert inbox.subjects() == ["[RTV] Drift in ingestion ing-20261126-080000-abc: household_size"]
    body = inbox.bodies()[0]
    assert "  rows compared: 500" in body and "  champion version: 3" in body
    assert f"  household_size: psi {result['features']['household_size']['psi']}, ks " in body
    assert (
        f"  programme change (not drift): household_income psi {result['programme_change']['household_income']}"
        in body
    )
    assert "Dashboard: http://dash.example:8501/model" in body


def test_an_unreachable_smtp_server_is_recorded_not_raised(
    rtv_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_alerts_at(monkeypatch, free_port())  # nothing listens there
    rt = runtime_for(Settings())
    assert notify(rt, failure(1), NOW) == "recorded"
    [logged] = alerts_sent(rt.catalog)
    assert not logged.delivered and "ConnectionRefusedError" in logged.error and logged.events == 1


@pytest.mark.usefixtures("prefect_server")
def test_the_ingest_flow_failure_hook_sends_mail(inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    monkeypatch.setenv("RTV_TASK_RETRIES", "0")  # the missing ingestion is not transient; fail at once
    with pytest.raises(LookupError):
        ingest("ing-20261126-000000-missing")
    [subject], [body] = inbox.subjects(), inbox.bodies()
    assert (
        subject == "[RTV] ingest flow failed: Flow run encountered an exception: LookupError: no landed "
        "ingestion 'ing-20261126-000000-missing'"
    )
    assert "  ingestion_id: ing-20261126-000000-missing" in body and "  state: Failed" in body


@pytest.mark.usefixtures("prefect_server")
def test_scheduled_runs_are_read_from_the_prefect_api(rtv_env: Settings) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.states import Completed, Failed, Scheduled

    from tasks.monitoring.schedules import run_breaches, scheduled_runs

    now = datetime.now(UTC)
    cron = CronSchedule(cron="0 1 * * *", timezone="Africa/Kampala")
    names = {"rtv-test-broken/nightly", "rtv-test-stuck/nightly", "rtv-test-fine/nightly"}
    with get_client(sync_client=True) as client:
        for name, state in (
            ("broken", Failed(message="Flow run encountered an exception: KeyError: 'x'")),
            ("stuck", Scheduled(scheduled_time=now - timedelta(hours=3))),
            ("fine", Completed()),
        ):
            deployment = client.create_deployment(
                flow_id=client.create_flow_from_name(f"rtv-test-{name}"),
                name="nightly",
                schedules=[DeploymentScheduleCreate(schedule=cron, active=False)],
            )
            client.create_flow_run_from_deployment(deployment, state=state)
    found = {r.deployment: r for r in scheduled_runs(now + timedelta(seconds=5)) if r.deployment in names}
    assert {d: r.state_type for d, r in found.items()} == {
        "rtv-test-broken/nightly": "FAILED",
        "rtv-test-stuck/nightly": "SCHEDULED",
        "rtv-test-fine/nightly": "COMPLETED",
    }
    breaches = run_breaches(list(found.values()), now, late_minutes=60)
    assert sorted((b.check, b.subject) for b in breaches) == [
        ("run_failed", "rtv-test-broken/nightly"),
        ("run_late", "rtv-test-stuck/nightly"),
    ]


@pytest.mark.usefixtures("prefect_server")
def test_the_real_file_breaches_no_threshold_and_sends_no_mail(inbox: Inbox, real_csv: Any) -> None:
    from flows.ingest import ingest
    from tasks.ingest.landing import land

    rt = runtime_for(Settings())
    report = ingest(land(rt, real_csv, source_name="real", door="cli").ingestion_id)
    assert report["rows_quarantined"] == 181
    assert check_ingestion(rt, report["ingestion_id"]) == [] and inbox.messages == []
    worst = min(
        1 - o.unexpected_count / o.element_count
        for o in rt.catalog.rule_outcomes(report["ingestion_id"])
        if o.element_count
    )
    assert worst == pytest.approx(1 - 89 / 3897, abs=1e-3)
