"""Take surveys in: decide replay / conflict / edit, land the accepted ones, record their versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, select

from api.models import ANSWERS, SurveyIn
from tasks.ingest.landing import Sealed, ingestion_row, land, seal
from tasks.ingest.rounds import ROUND_COLUMN
from tasks.ingest.submissions import (
    SubmissionRace,
    Version,
    content_hash,
    decide,
    landed_event,
    latest_of,
    record,
    record_group,
    submission_row,
)
from tasks.ingest.zones import new_ingestion_id, raw_key
from tasks.platform.catalog.models import Ingestion, utcnow
from tasks.platform.storage import put_group
from tasks.runtime import Runtime

_ING = Ingestion.__table__
_BY_SHA256 = select(_ING.c.sha256, _ING.c.id).where(_ING.c.sha256.in_(bindparam("shas", expanding=True)))


@dataclass
class Outcome:
    """What became of one survey."""

    outcome: str  # accepted | replayed | conflict | invalid
    ingestion_id: str | None = None
    version: int | None = None
    reason: str | None = None
    instance_id: str | None = None
    new_ingestion: bool = False


def safe_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Validation errors naming the field and the rule, never the submitted value."""
    return [
        {"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]}
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def _reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'survey'}: {e['msg']}" for e in safe_errors(error)[:5]
    )


def record_line(survey: BaseModel) -> bytes:
    """The survey as one JSON-lines record with its exact source headers and metadata (what lands in raw/).

    The declared round is left out: it is kept on the ingestion, so the same survey is the same bytes whatever
    round it is sent under.
    """
    return orjson.dumps(survey.model_dump(by_alias=True, exclude_unset=True, exclude={ROUND_COLUMN})) + b"\n"


def digest(survey: BaseModel) -> str:
    """Content hash of the survey answers (metadata left out)."""
    return content_hash(survey.model_dump(include=ANSWERS, exclude_unset=True))


def submit_one(rt: Runtime, survey: Any, user: str) -> Outcome:
    """One survey: replay, conflict, or land it as its own ingestion and record its version."""
    iid, dep, answers = survey.instance_id, survey.deprecated_id, digest(survey)
    decision = decide(rt.catalog, iid, dep, answers)
    if decision.outcome == "replay":
        return Outcome("replayed", decision.ingestion_id, decision.version, instance_id=iid)
    if decision.outcome == "conflict":
        return Outcome("conflict", reason=decision.reason, instance_id=iid)
    landed = land(
        rt,
        record_line(survey),
        source_name="api-survey",
        door="api",
        submitted_by=user,
        survey_round=survey.survey_round,
    )
    try:
        record(
            rt.catalog,
            [Version(iid, decision.version, decision.chain_id, answers)],
            ingestion_id=landed.ingestion_id,
            deprecated={iid: dep},
            submitted_by=user,
            audit=None
            if landed.is_duplicate
            else {"door": "api", "kind": "survey", "version": decision.version},
        )
    except SubmissionRace:  # the same instance or chain version was stored a moment ago by another request
        again = decide(rt.catalog, iid, dep, answers)
        if again.outcome == "replay":
            return Outcome("replayed", again.ingestion_id, again.version, instance_id=iid)
        return Outcome(
            "conflict",
            reason=again.reason or "a concurrent edit replaced this version first",
            instance_id=iid,
        )
    return Outcome(
        "accepted",
        landed.ingestion_id,
        decision.version,
        instance_id=iid,
        new_ingestion=not landed.is_duplicate,
    )


@dataclass
class _Staged:
    """An accepted survey of a group, sealed and waiting for the group's store sync and transaction."""

    index: int
    user: str
    version: Version
    deprecated_id: str | None
    sealed: Sealed
    survey_round: str | None


def _landed_before(rt: Runtime, sha256s: list[str]) -> dict[str, str]:
    """Ingestion ids of bytes already catalogued, by sha256 (one indexed query for the group)."""
    with rt.catalog.engine.connect() as connection:
        return {sha: ingestion_id for sha, ingestion_id in connection.execute(_BY_SHA256, {"shas": sha256s})}


def submit_group(rt: Runtime, items: Sequence[tuple[Any, str]]) -> list[Outcome | Exception]:
    """Single surveys of many requests, judged in arrival order and landed together; an outcome or error each.

    Each accepted survey is its own ingestion with its own raw object, as with submit_one; the group shares one
    store sync and one catalog transaction. A survey that fails to prepare fails alone; if the group's write
    fails, its objects are removed and every survey is taken again on its own, so no 202 is ever given for a
    survey that is not durable in both the raw zone and the catalog.
    """
    results: list[Outcome | Exception] = [Exception("not judged")] * len(items)
    pending: dict[str, Version] = {}
    staged: list[_Staged] = []
    keyring = rt.keyring  # once per group: LiveKeys stats the key file on every call
    # one query for the group's ids instead of one (or two) per survey
    stored = latest_of(
        rt.catalog, {i for survey, _ in items for i in (survey.instance_id, survey.deprecated_id) if i}
    )
    for index, (survey, user) in enumerate(items):
        try:
            iid, dep, answers = survey.instance_id, survey.deprecated_id, digest(survey)
            decision = decide(rt.catalog, iid, dep, answers, pending, stored)
            if decision.outcome == "replay":
                results[index] = Outcome("replayed", decision.ingestion_id, decision.version, instance_id=iid)
            elif decision.outcome == "conflict":
                results[index] = Outcome("conflict", reason=decision.reason, instance_id=iid)
            else:
                sealed = seal(keyring, record_line(survey))
                version = Version(iid, decision.version, decision.chain_id, answers, new_ingestion_id())
                pending[iid] = version
                staged.append(_Staged(index, user, version, dep, sealed, survey.survey_round))
                results[index] = Outcome(
                    "accepted", version.ingestion_id, version.version, instance_id=iid, new_ingestion=True
                )
        except Exception as error:  # noqa: BLE001 - this survey fails alone; the router answers 500
            results[index] = error
    if not staged:
        return results
    try:
        _write_group(rt, staged, results)
    except Exception:  # noqa: BLE001 - the whole group is taken again, survey by survey
        return [
            result if isinstance(result, Exception) else _one(rt, survey, user)
            for result, (survey, user) in zip(results, items, strict=True)
        ]
    return results


def _write_group(rt: Runtime, staged: list[_Staged], results: list[Outcome | Exception]) -> None:
    earlier = _landed_before(rt, [s.sealed.sha256 for s in staged])
    if earlier:  # identical bytes came in through another door: point at that ingestion, as land() does
        moved = {
            s.version.ingestion_id: earlier[s.sealed.sha256] for s in staged if s.sealed.sha256 in earlier
        }
        for result in results:
            if isinstance(result, Outcome) and result.ingestion_id in moved:
                result.ingestion_id, result.new_ingestion = moved[result.ingestion_id], False
    fresh = [s for s in staged if s.sealed.sha256 not in earlier]
    objects = [(raw_key(str(s.version.ingestion_id)), s.sealed.ciphertext) for s in fresh]
    try:
        put_group(rt.store, objects)  # durable before the catalog rows exist, so before any 2xx
        now = utcnow()
        record_group(
            rt.catalog,
            ingestions=[
                ingestion_row(
                    str(s.version.ingestion_id),
                    s.sealed.sha256,
                    s.sealed.size_bytes,
                    source_name="api-survey",
                    door="api",
                    submitted_by=s.user,
                    survey_round=s.survey_round,
                )
                | {"received_at": now, "attempts": 0}
                for s in fresh
            ],
            submissions=[
                submission_row(
                    s.version,
                    ingestion_id=_id_of(results[s.index]),
                    deprecated_id=s.deprecated_id,
                    submitted_by=s.user,
                    received_at=now,
                )
                for s in staged
            ],
            events=[
                landed_event(
                    str(s.version.ingestion_id),
                    s.user,
                    now,
                    {"door": "api", "kind": "survey", "version": s.version.version},
                )
                for s in fresh
            ],
        )
    except Exception:
        for key, _ in objects:
            rt.store.delete(key)  # never catalogued: nothing may point at them
        raise


def _id_of(result: Outcome | Exception) -> str:
    if not isinstance(result, Outcome) or result.ingestion_id is None:
        raise TypeError(f"no ingestion id in {type(result).__name__}")  # callers pass stored outcomes only
    return result.ingestion_id


def _one(rt: Runtime, survey: Any, user: str) -> Outcome | Exception:
    try:
        return submit_one(rt, survey, user)
    except Exception as error:  # noqa: BLE001 - this survey fails alone
        return error


def submit_batch(
    rt: Runtime, items: list[Any], user: str, survey_round: str | None = None
) -> tuple[str | None, bool, list[Outcome]]:
    """A sync batch: every survey judged in order; the accepted ones land together as one ingestion.

    The batch lands under one round: `survey_round` (validated by the caller), else the first `survey_round` a
    survey declares; a survey declaring another round is invalid (one ingestion, one declared round).
    Returns (ingestion id or None, whether it is a new ingestion, one outcome per survey).
    """
    outcomes: list[Outcome] = []
    pending: dict[str, Version] = {}
    accepted: list[tuple[int, Any, Version]] = []
    for item in items:
        if not isinstance(item, dict):
            outcomes.append(Outcome("invalid", reason="each survey must be a JSON object"))
            continue
        try:
            survey = SurveyIn.model_validate(item)
        except ValidationError as bad:
            outcomes.append(Outcome("invalid", reason=_reason(bad)))
            continue
        own = survey.survey_round
        if own is not None and survey_round is not None and own != survey_round:
            outcomes.append(
                Outcome(
                    "invalid",
                    reason="survey_round: differs from the batch's round; send each round in its own batch",
                    instance_id=survey.instance_id,
                )
            )
            continue
        survey_round = survey_round or own
        iid, dep, answers = survey.instance_id, survey.deprecated_id, digest(survey)
        decision = decide(rt.catalog, iid, dep, answers, pending)
        if decision.outcome == "accept":
            version = Version(iid, decision.version, decision.chain_id, answers)
            pending[iid] = version
            accepted.append((len(outcomes), survey, version))
            outcomes.append(Outcome("accepted", version=decision.version, instance_id=iid))
        elif decision.outcome == "replay":
            outcomes.append(Outcome("replayed", decision.ingestion_id, decision.version, instance_id=iid))
        else:
            outcomes.append(Outcome("conflict", reason=decision.reason, instance_id=iid))
    if not accepted:
        return None, False, outcomes
    landed = land(
        rt,
        b"".join(record_line(s) for _, s, _ in accepted),
        source_name="api-sync",
        door="api",
        submitted_by=user,
        survey_round=survey_round,
    )
    deprecated = {v.instance_id: s.deprecated_id for _, s, v in accepted}
    try:
        record(
            rt.catalog,
            [v for _, _, v in accepted],
            ingestion_id=landed.ingestion_id,
            deprecated=deprecated,
            submitted_by=user,
            audit={"door": "api", "kind": "sync", "surveys": len(accepted)},
        )
    except SubmissionRace:  # a concurrent request took some ids: keep the others, one by one
        for index, _, version in accepted:
            try:
                record(
                    rt.catalog,
                    [version],
                    ingestion_id=landed.ingestion_id,
                    deprecated=deprecated,
                    submitted_by=user,
                )
            except SubmissionRace:
                outcomes[index] = Outcome(
                    "conflict",
                    reason="a concurrent submission took this instance id first",
                    instance_id=version.instance_id,
                )
    for outcome in outcomes:
        if outcome.outcome == "accepted" or (outcome.outcome == "replayed" and outcome.ingestion_id is None):
            outcome.ingestion_id = landed.ingestion_id
    return landed.ingestion_id, not landed.is_duplicate, outcomes
