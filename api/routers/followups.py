"""GET the follow-up worklist: households due a visit in a round, by village; officers see their villages only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, require
from api.models import FollowupHousehold, Followups, Refused
from tasks.ingest.report import utc_iso
from tasks.ingest.rounds import BadRoundLabel, optional_round
from tasks.protection import audit
from tasks.protection.assignments import BadVillage, Village, parse_village, villages_of
from tasks.protection.users import Action, can, sees_household_id
from tasks.workflows.followups import Worklist, worklist

router = APIRouter(prefix="/api/v1", tags=["followups"])
Reader = Annotated[Principal, Depends(require(Action.READ_FOLLOWUPS))]
MAX_VILLAGES = 100  # one query holds three parameters per village
NOT_YOURS = (
    "a village you asked for is not assigned to you; leave out `village` to list all of yours "
    "(villages are assigned with `rtv users assign`)"
)
UNASSIGNED = "no village is assigned to you yet: villages are assigned with `rtv users assign`"


def _villages(asked: list[str]) -> list[Village]:
    """The villages asked for, each once; 422 naming `village` and the format (never the value)."""
    if len(asked) > MAX_VILLAGES:
        raise HTTPException(422, f"village: ask for at most {MAX_VILLAGES} villages at once")
    try:
        return list(dict.fromkeys(parse_village(v) for v in asked))
    except BadVillage as bad:
        raise HTTPException(422, f"village: {bad}") from None


def _message(found: Worklist, *, unassigned: bool) -> str | None:
    if unassigned:
        return UNASSIGNED
    if found.survey_round is None:
        return "no survey round has visits yet"
    if found.upcoming:
        known = ", ".join(found.rounds) or "none"
        return (
            "this round has no visit yet, so it comes after every known round: every household seen so far "
            f"is due (rounds with visits: {known})"
        )
    return None


@router.get(
    "/followups",
    response_model=Followups,
    responses={403: {"model": Refused}, 422: {"model": Refused}},
)
async def followups(
    request: Request,
    response: Response,
    user: Reader,
    village: Annotated[
        list[str] | None,
        Query(description="DISTRICT/CLUSTER/VILLAGE, repeatable (default: every village you may see)"),
    ] = None,
    survey_round: Annotated[
        str | None,
        Query(
            alias="round",
            max_length=40,
            description="the round to visit (default: the current round, the latest with visits); a round "
            "with no visit yet comes after every known round",
        ),
    ] = None,
) -> Followups:
    """Households seen in an earlier round and not yet visited in this one, ordered by village."""
    api = request.app.state.api
    catalog = api.rt.catalog
    asked = _villages(village or [])
    try:
        chosen_round = optional_round(survey_round)
    except BadRoundLabel as bad:
        raise HTTPException(422, f"round: {bad}") from None
    everywhere = can(user.role, Action.READ_ALL)
    assigned = set() if everywhere else set(await run_in_threadpool(villages_of, catalog, user.name))
    if not everywhere and any(v not in assigned for v in asked):
        outside = [v.label() for v in asked if v not in assigned]
        refused: dict[str, object] = {
            "action": Action.READ_FOLLOWUPS.value,
            "path": request.url.path,
            "villages": outside,
        }
        await run_in_threadpool(audit.record, catalog, user.name, "denied", None, refused)
        raise HTTPException(403, NOT_YOURS)
    scope: list[Village] | None = asked or (None if everywhere else sorted(assigned))
    env = api.settings.env

    def reveal(place: Village) -> bool:
        return sees_household_id(user.role, env, assigned=place in assigned)

    found = await run_in_threadpool(worklist, api.rt, chosen_round, scope, reveal)
    labels = None if scope is None else [v.label() for v in scope]
    detail: dict[str, object] = {
        "round": found.survey_round,
        "villages": labels if labels is not None else "all",
        "count": len(found.households),
        "ids_revealed": found.ids_revealed,
        "upcoming": found.upcoming,
    }
    await run_in_threadpool(audit.record, catalog, user.name, "followups_read", found.survey_round, detail)
    response.headers["Cache-Control"] = "no-store"  # the answer can hold household ids: no copy in any cache
    return Followups(
        round=found.survey_round,
        upcoming=found.upcoming,
        villages=labels,
        ids_revealed=found.ids_revealed,
        households=[
            FollowupHousehold(**{**row, "last_visit_at": utc_iso(row["last_visit_at"]) or ""})
            for row in found.households
        ],
        count=len(found.households),
        message=_message(found, unassigned=not everywhere and not assigned),
    )
