"""Survey submissions through the API: replay, conflict and edit chains keyed by instance id (ODK semantics).

A survey's content hash covers the 75 survey answers only (canonical JSON, sorted keys); transport and
collection metadata (instance and deprecated ids, device time, device, officer, app version) are left out,
so a device that re-sends the same answers later is replayed, not refused.

* same instance id, same answers → replay (the earlier ingestion id);
* same instance id, other answers → conflict, unless `deprecated_id` equals that instance id and it is the
  head of its chain: then it is stored as the next version under the same id;
* a new instance id whose `deprecated_id` names the head of a chain → the next version of that chain (an
  ODK edit); naming anything else (an unknown id, or a version already replaced) → conflict.
Every version is kept; each points at the ingestion that holds its bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict

import orjson
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from tasks.platform.catalog import Catalog
from tasks.platform.catalog.models import AuditEvent, Ingestion, SurveySubmission, table_of, utcnow

_T = table_of(SurveySubmission)
_AUDIT = table_of(AuditEvent)


class SubmissionRace(Exception):
    """Another request stored the same instance id or chain version first."""


@dataclass(frozen=True)
class Version:
    """One stored version of a survey."""

    instance_id: str
    version: int
    chain_id: str
    content_hash: str
    ingestion_id: str | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with a submission: accept as `version` of `chain_id`, replay an earlier one, or refuse."""

    outcome: Literal["accept", "replay", "conflict"]
    version: int = 1
    chain_id: str = ""
    ingestion_id: str | None = None
    reason: str | None = None


class SubmissionRow(TypedDict):
    """A survey_submissions row, as inserted."""

    instance_id: str
    version: int
    chain_id: str
    content_hash: str
    ingestion_id: str
    deprecated_id: str | None
    submitted_by: str
    received_at: datetime


class AuditEventRow(TypedDict):
    """An audit_log row, as inserted."""

    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]  # free-form JSON


def content_hash(answers: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the survey answers (sorted keys, no whitespace)."""
    return hashlib.sha256(orjson.dumps(dict(answers), option=orjson.OPT_SORT_KEYS)).hexdigest()


_COLUMNS = (_T.c.instance_id, _T.c.version, _T.c.chain_id, _T.c.content_hash, _T.c.ingestion_id)
# built once: constructing a statement costs more than running it on the hot path (one lookup per survey)
_LATEST = (
    select(*_COLUMNS)
    .where(_T.c.instance_id == bindparam("instance_id"))
    .order_by(_T.c.version.desc())
    .limit(1)
)
_LATEST_OF = select(*_COLUMNS).where(_T.c.instance_id.in_(bindparam("ids", expanding=True)))
_CHAIN_TOP = select(func.max(_T.c.version)).where(_T.c.chain_id == bindparam("chain_id"))
_INSERT = insert(_T)
_INSERT_AUDIT = insert(_AUDIT)
_INSERT_INGESTION = insert(table_of(Ingestion))


def _latest(catalog: Catalog, instance_id: str) -> Version | None:
    with catalog.engine.connect() as connection:
        row = connection.execute(_LATEST, {"instance_id": instance_id}).first()
    return Version(*row) if row else None


def latest_of(catalog: Catalog, instance_ids: Collection[str]) -> dict[str, Version | None]:
    """The current version of each instance id (None when unknown), in one query: `decide`'s `stored` map."""
    found: dict[str, Version | None] = dict.fromkeys(instance_ids)
    if not found:
        return found
    with catalog.engine.connect() as connection:
        for row in connection.execute(_LATEST_OF, {"ids": list(found)}):
            version = Version(*row)
            current = found.get(version.instance_id)
            if current is None or version.version > current.version:
                found[version.instance_id] = version
    return found


def _chain_top(catalog: Catalog, chain_id: str) -> int:
    with catalog.engine.connect() as connection:
        return int(connection.execute(_CHAIN_TOP, {"chain_id": chain_id}).scalar() or 0)


def decide(
    catalog: Catalog,
    instance_id: str,
    deprecated_id: str | None,
    digest: str,
    pending: Mapping[str, Version] | None = None,
    stored: Mapping[str, Version | None] | None = None,
) -> Decision:
    """Replay, conflict or accept (with the version number), given what is stored and `pending` (same batch).

    `stored` (from `latest_of`) saves the per-id lookups for the ids it holds; other ids are looked up.
    """
    pending = pending or {}

    def latest(iid: str) -> Version | None:
        if iid in pending:
            return pending[iid]
        return stored[iid] if stored is not None and iid in stored else _latest(catalog, iid)

    current = latest(instance_id)
    base: Version | None
    if current is not None:
        if current.content_hash == digest:
            return Decision("replay", current.version, current.chain_id, current.ingestion_id)
        if deprecated_id != instance_id:
            return Decision(
                "conflict",
                reason="this instance id was already submitted with other answers; "
                "an edit must name it in deprecated_id",
            )
        base = current
    elif deprecated_id is None:
        return Decision("accept", 1, instance_id)
    else:
        base = latest(deprecated_id)
        if base is None:
            return Decision("conflict", reason="deprecated_id names no submission this server holds")
    top = max(
        [_chain_top(catalog, base.chain_id)]
        + [v.version for v in pending.values() if v.chain_id == base.chain_id]
    )
    if base.version != top:
        return Decision("conflict", reason="deprecated_id names a version that a later edit has replaced")
    return Decision("accept", base.version + 1, base.chain_id)


def submission_row(
    version: Version,
    *,
    ingestion_id: str,
    deprecated_id: str | None,
    submitted_by: str,
    received_at: datetime,
) -> SubmissionRow:
    """The survey_submissions row of one accepted version."""
    return {
        "instance_id": version.instance_id,
        "version": version.version,
        "chain_id": version.chain_id,
        "content_hash": version.content_hash,
        "ingestion_id": ingestion_id,
        "deprecated_id": deprecated_id,
        "submitted_by": submitted_by,
        "received_at": received_at,
    }


def landed_event(ingestion_id: str, submitted_by: str, at: datetime, detail: dict[str, Any]) -> AuditEventRow:
    """The `landed` audit event row of one ingestion."""
    return {"at": at, "actor": submitted_by, "action": "landed", "target": ingestion_id, "detail": detail}


def record_group(
    catalog: Catalog,
    *,
    ingestions: Sequence[dict[str, Any]],
    submissions: Sequence[SubmissionRow],
    events: Sequence[AuditEventRow],
) -> None:
    """Insert ingestions, survey versions and audit events in ONE transaction; SubmissionRace if any row clashes."""
    try:
        with catalog.write_lock, catalog.engine.begin() as connection:
            if ingestions:  # first: the versions' foreign keys point at them
                connection.execute(_INSERT_INGESTION, list(ingestions))
            if submissions:
                connection.execute(_INSERT, list(submissions))
            if events:
                connection.execute(_INSERT_AUDIT, list(events))
    except IntegrityError:
        raise SubmissionRace("a row of the group was stored by another request first") from None


def record(
    catalog: Catalog,
    versions: Sequence[Version],
    *,
    ingestion_id: str,
    deprecated: Mapping[str, str | None],
    submitted_by: str,
    audit: dict[str, Any] | None = None,
) -> None:
    """Store accepted versions (and one `landed` audit event) in one transaction; SubmissionRace if one was taken."""
    now = utcnow()
    rows = [
        submission_row(
            v,
            ingestion_id=ingestion_id,
            deprecated_id=deprecated.get(v.instance_id),
            submitted_by=submitted_by,
            received_at=now,
        )
        for v in versions
    ]
    try:
        with catalog.write_lock, catalog.engine.begin() as connection:
            if rows:
                connection.execute(_INSERT, rows)
            if audit is not None:
                connection.execute(_INSERT_AUDIT, landed_event(ingestion_id, submitted_by, now, audit))
    except IntegrityError:
        raise SubmissionRace(ingestion_id) from None


def count(catalog: Catalog, ingestion_id: str | None = None) -> int:
    """Stored survey versions, optionally those of one ingestion."""
    query = select(func.count()).select_from(_T)
    if ingestion_id:
        query = query.where(_T.c.ingestion_id == ingestion_id)
    with catalog.engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def versions_of(catalog: Catalog, chain_id: str) -> list[Version]:
    """Every stored version of an edit chain, oldest first."""
    query = select(*_COLUMNS).where(_T.c.chain_id == chain_id).order_by(_T.c.version)
    with catalog.engine.connect() as connection:
        return [Version(*row) for row in connection.execute(query)]
