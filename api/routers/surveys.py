"""POST one survey, or an offline device's batch; both answer before any processing happens."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import Submitter
from api.errors import declared_round
from api.intake import safe_errors, submit_batch
from api.limits import read_json
from api.models import ROUND_DESCRIPTION, Accepted, Refused, SurveyIn, SyncOutcome, SyncResult
from tasks.ingest.rounds import ROUND_PATTERN

router = APIRouter(prefix="/api/v1", tags=["surveys"])
_SCHEMA = SurveyIn.model_json_schema(by_alias=True)
_SURVEY_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}}}
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["surveys"],
                    "additionalProperties": False,
                    "properties": {
                        "surveys": {"type": "array", "items": _SCHEMA},
                        "round": {
                            "type": "string",
                            "pattern": ROUND_PATTERN,
                            "maxLength": 40,
                            "description": ROUND_DESCRIPTION,
                        },
                    },
                }
            }
        },
    }
}


def status_url(ingestion_id: str | None) -> str | None:
    return f"/api/v1/status/{ingestion_id}" if ingestion_id else None


@router.post(
    "/upload/survey-data",
    status_code=202,
    response_model=Accepted,
    openapi_extra=_SURVEY_BODY,
    responses={
        200: {"model": Accepted, "description": "the same survey was received before (replay)"},
        409: {"model": Refused},
        413: {"model": Refused},
        415: {"model": Refused},
        422: {"description": "names the field and the rule, never the value"},
    },
)
async def upload_survey(request: Request, user: Submitter) -> Any:
    """One survey (contract source headers + metadata): 202 landed, 200 replay, 409 conflicting content."""
    api = request.app.state.api
    body = await read_json(request, api.settings.max_json_bytes, api.settings.max_json_depth)
    if not isinstance(body, dict):
        raise HTTPException(422, "the survey must be a JSON object")
    try:
        survey = SurveyIn.model_validate(body)
    except ValidationError as bad:
        return JSONResponse({"detail": safe_errors(bad)}, status_code=422)
    result = await api.committer.submit(survey, user.name)  # group commit: see api/committer.py
    if result.outcome == "conflict":
        return JSONResponse({"detail": result.reason}, status_code=409)
    if result.new_ingestion:
        api.dispatcher.poke()
    # the Accepted shape (response_model documents it), serialised by orjson without a model round trip
    answer = {
        "ingestion_id": result.ingestion_id,
        "status_url": status_url(result.ingestion_id),
        "outcome": result.outcome,
        "version": result.version,
    }
    return Response(
        orjson.dumps(answer),
        status_code=202 if result.outcome == "accepted" else 200,
        media_type="application/json",
    )


@router.post(
    "/sync/batch",
    response_model=SyncResult,
    openapi_extra=_BATCH_BODY,
    responses={
        202: {"model": SyncResult, "description": "some surveys were accepted"},
        413: {"model": Refused},
        415: {"model": Refused},
        422: {"model": Refused, "description": "not a batch, or `round` is not a valid survey round"},
    },
)
async def sync_batch(request: Request, user: Submitter) -> Any:
    """Up to RTV_MAX_SYNC_SURVEYS surveys: an outcome each (accepted, replayed, conflict, invalid)."""
    api = request.app.state.api
    body = await read_json(request, api.settings.max_json_bytes, api.settings.max_json_depth)
    surveys = body.get("surveys") if isinstance(body, dict) else None
    if not isinstance(surveys, list):
        raise HTTPException(422, 'send {"surveys": [ ... ]}')
    if len(surveys) > api.settings.max_sync_surveys:
        raise HTTPException(413, f"a batch holds at most {api.settings.max_sync_surveys} surveys")
    survey_round = declared_round(body.get("round"))  # refused before any survey is judged or landed
    ingestion_id, new, outcomes = await run_in_threadpool(
        submit_batch, api.rt, surveys, user.name, survey_round
    )
    if new:
        await run_in_threadpool(api.dispatcher.trigger_file, api.rt.catalog, ingestion_id)
    counts = {
        k: sum(o.outcome == k for o in outcomes) for k in ("accepted", "replayed", "conflict", "invalid")
    }
    result = SyncResult(
        ingestion_id=ingestion_id,
        status_url=status_url(ingestion_id),
        counts=counts,
        outcomes=[
            SyncOutcome(
                index=i,
                instance_id=o.instance_id,
                outcome=o.outcome,
                ingestion_id=o.ingestion_id,
                version=o.version,
                reason=o.reason,
            )
            for i, o in enumerate(outcomes)
        ],
    )
    return JSONResponse(result.model_dump(), status_code=202 if counts["accepted"] else 200)
