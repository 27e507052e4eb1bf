"""Request limits: body size, JSON depth, per-user rate limit (token bucket) and the client IP allow-list.

The rate limiter lives in the API process: with several API processes (uvicorn --workers, several hosts)
each keeps its own buckets, so a user gets up to N times the limit; put a shared limiter (the reverse proxy,
or Redis) in front when that matters.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class RateLimiter:
    """Token bucket per key: `per_minute` tokens a minute, bursts up to a sixth of that (at least 5)."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(per_minute / 6.0, 5.0)
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise 429 with Retry-After (whole seconds until a token is back)."""
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            raise HTTPException(429, "too many requests; retry later", headers={"Retry-After": str(wait)})
        self._buckets[key] = (tokens - 1.0, now)


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, stopping once past `limit`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


async def capped_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body in chunks; 413 as soon as it passes `limit` bytes (or declares more)."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise HTTPException(413, f"the request body is larger than the {limit:,}-byte limit")
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise HTTPException(413, f"the request body is larger than the {limit:,}-byte limit")
        yield chunk


async def read_json(request: Request, max_bytes: int, max_depth: int) -> Any:
    """Parse a JSON body within the byte and depth limits: 415 for another type, 413 too big, 422 malformed."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "send the survey as application/json")
    body = b"".join([chunk async for chunk in capped_stream(request, max_bytes)])
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as bad:  # orjson refuses nesting past 1024 itself; never echo its message
        if str(bad).startswith("depth limit"):
            raise HTTPException(422, f"the JSON is nested more than {max_depth} levels deep") from None
        raise HTTPException(422, f"the body is not valid JSON (character {bad.pos})") from None
    if body.count(b"[") + body.count(b"{") > max_depth and json_depth(value, max_depth) > max_depth:
        raise HTTPException(422, f"the JSON is nested more than {max_depth} levels deep")
    return value


class IPAllowList:
    """ASGI middleware: 403 for clients outside the allowed networks (an empty list allows everyone).

    The client address is the socket peer, or X-Forwarded-For when uvicorn trusts the proxy that sent it
    (`--forwarded-allow-ips`, 127.0.0.1 by default).
    """

    def __init__(self, app: ASGIApp, networks: list[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.networks:
            host = (scope.get("client") or ("",))[0]
            try:
                address = ipaddress.ip_address(host)
                allowed = any(address in network for network in self.networks)
            except ValueError:
                allowed = False
            if not allowed:
                await JSONResponse({"detail": "this address may not use the API"}, status_code=403)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)
