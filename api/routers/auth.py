"""POST /api/v1/auth/token: a user name and password (form fields) for a bearer token of at most 30 minutes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.auth import UNAUTHORIZED
from api.models import Refused, Token
from tasks.protection import audit
from tasks.protection.users import authenticate

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=Token, responses={401: {"model": Refused}, 429: {"model": Refused}})
async def token(
    request: Request,
    username: Annotated[str, Form(max_length=120)],
    password: Annotated[str, Form(max_length=1024)],
) -> Token:
    """OAuth2 password flow (form fields `username`, `password`)."""
    api = request.app.state.api
    api.limiter.check(f"ip:{request.client.host if request.client else '-'}")
    user = await run_in_threadpool(authenticate, api.rt.catalog, username, password)
    if user is None:
        await run_in_threadpool(
            audit.record, api.rt.catalog, username[:120], "denied", None, {"action": "sign_in"}
        )
        raise HTTPException(401, "unknown user or wrong password", headers=UNAUTHORIZED)
    await run_in_threadpool(audit.record, api.rt.catalog, user.name, "signed_in", None, {"door": "api"})
    return Token(
        access_token=api.tokens.issue(user.name, user.role), expires_in=api.tokens.ttl, role=user.role
    )
