"""Alert mail over SMTP: one mail per event (what happened, the numbers, a dashboard link); repeats are grouped.

The first event of a key opens a window of `RTV_ALERT_GROUP_MINUTES` and is mailed at once; repeats inside
the window are only counted, and one summary mail reports them when the window has closed (`flush`). Alerting
never raises: an unreachable SMTP server is logged and recorded, never a reason for a flow to fail.
"""

from __future__ import annotations

import logging
import re
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from tasks.platform.catalog import monitoring as store
from tasks.platform.settings import Settings

if TYPE_CHECKING:
    from tasks.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One event worth a mail; events with the same `key` are grouped."""

    kind: str  # flow_failure, quality, drift, schedule
    key: str
    subject: str
    what: str
    numbers: dict[str, Any] = field(default_factory=dict)
    page: str = ""  # dashboard page the mail links to


def recipients(settings: Settings) -> list[str]:
    """The addresses in RTV_ALERT_EMAILS."""
    return [a.strip() for a in settings.alert_emails.split(",") if a.strip()]


def compose(
    settings: Settings, alert: Alert, now: datetime, held_back: int = 0, since: datetime | None = None
) -> EmailMessage:
    """The mail for one alert: what happened, its numbers, grouped repeats and a dashboard link."""
    lines = [alert.what, ""] + [f"  {name}: {value}" for name, value in alert.numbers.items()]
    if held_back:
        lines += [
            "",
            f"Also {held_back} more alert(s) of this kind since {since:%Y-%m-%d %H:%M} UTC were grouped "
            "into this mail.",
        ]
    lines += [
        "",
        f"Dashboard: {settings.dashboard_url.rstrip('/')}/{alert.page}".rstrip("/"),
        f"Time: {now:%Y-%m-%d %H:%M:%S} UTC",
        "",
        f"Repeats of this alert within {settings.alert_group_minutes} minutes are grouped into one summary.",
    ]
    message = EmailMessage()
    message["Subject"] = f"[RTV] {alert.subject}"[:255]
    message["From"] = settings.alert_sender
    message["To"] = ", ".join(recipients(settings))
    message.set_content("\n".join(lines))
    return message


def deliver(settings: Settings, message: EmailMessage) -> None:
    """Hand one message to the SMTP server (STARTTLS and login when configured)."""
    with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=15) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(
                settings.smtp_user,
                settings.smtp_password.get_secret_value() if settings.smtp_password else "",
            )
        smtp.send_message(message)


def _send(
    rt: Runtime, key: str, kind: str, message: EmailMessage, events: int, detail: dict[str, Any]
) -> str:
    s = rt.settings
    error = None
    if not s.smtp_host or not recipients(s):
        error = "not mailed: RTV_SMTP_HOST or RTV_ALERT_EMAILS is not set"
    else:
        try:
            deliver(s, message)
        except (OSError, smtplib.SMTPException) as failure:
            error = f"{type(failure).__name__}: {failure}"[:2000]
            log.warning("alert mail %r could not be sent: %s", message["Subject"], error)
    store.log_alert(
        rt.catalog,
        key=key,
        kind=kind,
        subject=str(message["Subject"]),
        events=events,
        delivered=error is None,
        error=error,
        detail=detail,
    )
    return "sent" if error is None else "recorded"


def notify(rt: Runtime, alert: Alert, now: datetime | None = None) -> str:
    """Mail an alert, or count it into its open group: "sent", "grouped", "recorded" (not mailed) or "failed"."""
    now = now or datetime.now(UTC)
    try:
        window = timedelta(minutes=rt.settings.alert_group_minutes)
        claim = store.claim(rt.catalog, alert.key, alert.kind, alert.subject, now, window)
        outcome = "grouped"
        if claim.send:
            message = compose(rt.settings, alert, now, claim.held_back, claim.since)
            outcome = _send(
                rt,
                alert.key,
                alert.kind,
                message,
                1 + claim.held_back,
                {"what": alert.what, "numbers": {k: str(v) for k, v in alert.numbers.items()}},
            )
        flush(rt, now)
        return outcome
    except Exception as error:  # noqa: BLE001 - alerting must never take a flow down with it
        log.warning("alert %s failed: %s", alert.key, error)
        return "failed"


def flush(rt: Runtime, now: datetime | None = None) -> int:
    """Send one summary for every closed window that held events back; returns how many were sent."""
    now = now or datetime.now(UTC)
    sent = 0
    for group in store.closed_groups(rt.catalog, now):
        if not store.take_held_back(rt.catalog, group):
            continue
        first, last = store.aware(group.first_at), store.aware(group.last_at)
        summary = Alert(
            group.kind,
            group.key,
            f"{group.grouped} more: {group.subject.removeprefix('[RTV] ')}",
            f"{group.grouped} more alert(s) like the last one mailed arrived between "
            f"{first:%Y-%m-%d %H:%M} and {last:%H:%M} UTC and were grouped into this summary.",
            {"grouped events": group.grouped, "events of this kind in all": group.total},
            "pipeline_runs",
        )
        _send(
            rt,
            group.key,
            group.kind,
            compose(rt.settings, summary, now),
            group.grouped,
            {"summary": True, "grouped": group.grouped},
        )
        sent += 1
    return sent


_VOLATILE = re.compile(r"ing-\d{8}-\d{6}-[0-9a-z]+|[0-9a-f]{8}-[0-9a-f-]{27}|\b[0-9a-f]{12,}\b|\d+(\.\d+)?")


def flow_failure(
    flow_name: str, run_name: str, run_id: str, state: str, message: str | None, parameters: dict[str, Any]
) -> Alert:
    """The alert for a failed or crashed flow run; the same error in the same flow groups, whatever the ids."""
    first = (message or "no message").splitlines()[0][:300]
    numbers: dict[str, Any] = {
        "flow": flow_name,
        "flow run": f"{run_name} ({run_id})",
        "state": state,
        "error": first,
    }
    numbers |= {k: v for k, v in parameters.items() if isinstance(v, str | int | float | bool)}
    return Alert(
        "flow_failure",
        f"flow_failure:{flow_name}:{_VOLATILE.sub('#', first)[:150]}",
        f"{flow_name} flow {state.lower()}: {first[:120]}",
        f"The Prefect flow run {run_name} of '{flow_name}' ended {state}.",
        numbers,
        "pipeline_runs",
    )
