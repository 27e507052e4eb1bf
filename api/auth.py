"""JWT issue and verify (PyJWT, HS256 only) and the FastAPI dependencies `current_user` and `require`."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tasks.platform.settings import Settings
from tasks.protection import audit
from tasks.protection.users import Action, can

ALGORITHMS = ["HS256"]  # the only algorithm accepted: `none`, RS/ES confusion and others are refused
MAX_TTL_SECONDS = 30 * 60
CACHE_SIZE = 10_000  # verified tokens remembered per process
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "role"]
_bearer = HTTPBearer(auto_error=False, description="token from POST /api/v1/auth/token")
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """The signed-in user, as the token says."""

    name: str
    role: str


def jwt_secret(settings: Settings) -> str:
    """RTV_JWT_SECRET, or in dev a random key kept in data_dir/run/jwt.key (0600); staging/production must set it."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.env != "dev":
        raise RuntimeError(f"RTV_JWT_SECRET must be set in {settings.env}")
    path = settings.data_dir / "run" / "jwt.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Path(path).read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return Path(path).read_text().strip()


class Tokens:
    """Issues and checks API tokens for one issuer and audience."""

    def __init__(self, settings: Settings) -> None:
        self.secret = jwt_secret(settings)
        self.issuer, self.audience = settings.jwt_issuer, settings.jwt_audience
        self.ttl = min(settings.jwt_ttl_minutes * 60, MAX_TTL_SECONDS)
        self._verified: dict[str, tuple[Principal, float]] = {}

    def issue(self, name: str, role: str) -> str:
        """A token for a user, valid for the configured lifetime (at most 30 minutes)."""
        now = int(time.time())
        claims = {
            "sub": name,
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHMS[0])

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; jwt.InvalidTokenError for anything else (alg, aud, iss, exp, signature).

        A token already verified is remembered (keyed by its exact text, signature included) until it expires:
        a device sends the same token for up to 30 minutes, and HMAC plus claim checks cost more than a lookup.
        """
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        principal, expires = self._check(token)
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _check(self, token: str) -> tuple[Principal, float]:
        claims = jwt.decode(
            token,
            self.secret,
            algorithms=ALGORITHMS,
            audience=self.audience,
            issuer=self.issuer,
            options={"require": REQUIRED_CLAIMS},
            leeway=5,
        )
        if int(claims["exp"]) - int(claims["iat"]) > MAX_TTL_SECONDS:
            raise jwt.InvalidTokenError("token lifetime exceeds 30 minutes")
        if not isinstance(claims["sub"], str) or not isinstance(claims["role"], str):
            raise jwt.InvalidTokenError("malformed subject or role")
        return Principal(claims["sub"], claims["role"]), float(claims["exp"])


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, from a valid bearer token (401 otherwise); counts the request against their rate limit."""
    api = request.app.state.api
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is required (POST /api/v1/auth/token)", headers=UNAUTHORIZED)
    try:
        user = api.tokens.verify(credentials.credentials)
    except jwt.InvalidTokenError:
        raise HTTPException(401, "the token is invalid or expired", headers=UNAUTHORIZED) from None
    api.limiter.check(user.name)
    return user


def require(action: Action) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, if their role may take `action` (403 and an audit event otherwise)."""

    async def allowed(request: Request, user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if not can(user.role, action):
            await deny(request, user, action.value)
        return user

    return allowed


async def deny(request: Request, user: Principal, what: str, target: str | None = None) -> None:
    """Record a refusal in the audit log and answer 403."""
    await run_in_threadpool(
        audit.record,
        request.app.state.api.rt.catalog,
        user.name,
        "denied",
        target,
        {"action": what, "path": request.url.path},
    )
    raise HTTPException(403, f"your role ({user.role}) may not {what.replace('_', ' ')} here")


SignedIn = Annotated[Principal, Depends(current_user)]
Submitter = Annotated[Principal, Depends(require(Action.SUBMIT))]
