"""The audit log: append-only record of who landed, viewed, exported, decrypted, approved or rotated what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from tasks.platform.catalog import Catalog
from tasks.platform.catalog.models import AuditEvent

ACTIONS = (
    "landed",
    "viewed",
    "exported",
    "decrypted",
    "approved",
    "rejected",
    "rotated",
    "retrained",
    "rolled_back",
    "signed_in",
    "denied",
    "user_added",
    "purged",
    "round_reassigned",
    "villages_assigned",
    "villages_unassigned",
    "followups_read",
)


def record(
    catalog: Catalog, actor: str, action: str, target: str | None = None, detail: dict[str, Any] | None = None
) -> None:
    """Append one event (never updated or deleted by the application)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    with catalog.session() as s:
        s.execute(insert(AuditEvent).values(actor=actor, action=action, target=target, detail=detail))


def events(
    catalog: Catalog,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 1000,
) -> list[AuditEvent]:
    """Events, newest first, optionally filtered."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    with catalog.session() as s:
        return list(s.scalars(query))
