"""Catalog access for monitoring: drift results, alert grouping windows (claimed atomically) and the mail log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tasks.platform.catalog.models import AlertGroup, AlertSent, DriftCheck, table_of
from tasks.platform.catalog.repo import Catalog


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every catalog time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_drift(catalog: Catalog, *, ingestion_id: str | None, scope: str, result: dict[str, Any]) -> None:
    """Store a drift result; a re-run of the same ingestion replaces its earlier result."""
    with catalog.session() as s:
        if ingestion_id is not None:
            s.execute(
                delete(DriftCheck).where(DriftCheck.ingestion_id == ingestion_id, DriftCheck.scope == scope)
            )
        s.add(
            DriftCheck(
                ingestion_id=ingestion_id,
                scope=scope,
                reference_version=result["reference_version"],
                rows=result["rows"],
                score=result["score"],
                drift=result["drift"],
                features=result["features"],
            )
        )


def drift_checks(
    catalog: Catalog,
    *,
    ingestion_id: str | None = None,
    since: datetime | None = None,
    flagged: bool | None = None,
    limit: int = 100,
) -> list[DriftCheck]:
    """Stored drift results, newest first."""
    query = select(DriftCheck).order_by(DriftCheck.computed_at.desc(), DriftCheck.id.desc()).limit(limit)
    if ingestion_id is not None:
        query = query.where(DriftCheck.ingestion_id == ingestion_id)
    if since is not None:
        query = query.where(DriftCheck.computed_at >= since)
    if flagged is not None:
        query = query.where(DriftCheck.drift.is_(flagged))
    with catalog.session() as s:
        return list(s.scalars(query))


@dataclass(frozen=True)
class Claim:
    """What to do with one event: mail it (`send`), or it was grouped into an open window."""

    send: bool
    held_back: int = 0  # events grouped since the previous mail, reported in this one
    since: datetime | None = None


def claim(catalog: Catalog, key: str, kind: str, subject: str, now: datetime, window: timedelta) -> Claim:
    """Open a window for `key` (mail this event) or count the event into the open one; safe across processes.

    Each branch is one conditional UPDATE or INSERT, so two processes racing on the same key cannot both
    mail: the loser's statement matches no row (or hits the primary key) and it counts instead.
    """
    table = table_of(AlertGroup)
    for _ in range(3):
        with catalog.write_lock, catalog.engine.begin() as db:
            counted = db.execute(
                update(table)
                .where(table.c.key == key, table.c.window_ends_at > now)
                .values(
                    grouped=table.c.grouped + 1,
                    total=table.c.total + 1,
                    last_at=now,
                    first_at=case((table.c.grouped == 0, now), else_=table.c.first_at),
                )
            )
            if counted.rowcount:
                return Claim(send=False)
            row = db.execute(select(table.c.grouped, table.c.first_at).where(table.c.key == key)).first()
            if row is not None:
                reopened = db.execute(
                    update(table)
                    .where(table.c.key == key, table.c.window_ends_at <= now, table.c.grouped == row.grouped)
                    .values(
                        window_ends_at=now + window,
                        first_at=now,
                        last_at=now,
                        grouped=0,
                        total=table.c.total + 1,
                        subject=subject[:255],
                    )
                )
                if reopened.rowcount:
                    return Claim(
                        send=True, held_back=row.grouped, since=aware(row.first_at) if row.grouped else None
                    )
                continue
        try:
            with catalog.write_lock, catalog.engine.begin() as db:
                db.execute(
                    insert(table).values(
                        key=key,
                        kind=kind,
                        window_ends_at=now + window,
                        first_at=now,
                        last_at=now,
                        grouped=0,
                        total=1,
                        subject=subject[:255],
                    )
                )
            return Claim(send=True)
        except IntegrityError:
            continue  # another process opened the window first: count into it
    return Claim(send=False)


def closed_groups(catalog: Catalog, now: datetime) -> list[AlertGroup]:
    """Windows that have closed with events still held back (they are owed a summary mail)."""
    with catalog.session() as s:
        return list(
            s.scalars(select(AlertGroup).where(AlertGroup.window_ends_at <= now, AlertGroup.grouped > 0))
        )


def take_held_back(catalog: Catalog, group: AlertGroup) -> bool:
    """Claim a closed group's held-back events for one summary mail (False when another process did)."""
    table = table_of(AlertGroup)
    with catalog.write_lock, catalog.engine.begin() as db:
        done = db.execute(
            update(table)
            .where(
                table.c.key == group.key,
                table.c.grouped == group.grouped,
                table.c.window_ends_at == group.window_ends_at,
            )
            .values(grouped=0)
        )
    return bool(done.rowcount)


def log_alert(catalog: Catalog, **fields: Any) -> None:
    """Record one alert mail (delivered or not)."""
    with catalog.session() as s:
        s.add(AlertSent(**fields))


def alerts_sent(catalog: Catalog, limit: int = 50) -> list[AlertSent]:
    """Alert mails, newest first."""
    with catalog.session() as s:
        return list(s.scalars(select(AlertSent).order_by(AlertSent.id.desc()).limit(limit)))
