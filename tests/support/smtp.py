"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it is handed, for the alert tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest

from tasks.platform.processes import free_port


@dataclass
class Inbox:
    """Messages the server accepted, with their envelope recipients."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def bodies(self) -> list[str]:
        return [m.get_content() for m in self.messages]

    def subjects(self) -> list[str]:
        return [
            str(m["Subject"]).strip() for m in self.messages
        ]  # a folded long subject keeps its leading space


@contextmanager
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """Start aiosmtpd on a free loopback port until the block ends."""
    from aiosmtpd.controller import Controller

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def point_alerts_at(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Settings for alert mail through the test server (plain SMTP on loopback: no STARTTLS, no login)."""
    monkeypatch.setenv("RTV_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RTV_SMTP_PORT", str(port))
    monkeypatch.setenv("RTV_SMTP_STARTTLS", "false")
    monkeypatch.setenv("RTV_ALERT_EMAILS", "ops@example.org, lead@example.org")
    monkeypatch.setenv("RTV_DASHBOARD_URL", "http://dash.example:8501")
