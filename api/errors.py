"""Error answers that never echo submitted values: 422 names field and rule; 500 logs only type and place."""

from __future__ import annotations

import logging
import traceback

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasks.ingest.rounds import BadRoundLabel, optional_round

log = logging.getLogger("rtv.api")
INTERNAL_ERROR = {"detail": "internal error; the request was logged"}


async def validation_error(_request: Request, error: Exception) -> JSONResponse:
    """422 naming the field and the rule, never the submitted value."""
    errors = error.errors() if isinstance(error, RequestValidationError) else []
    return JSONResponse(
        {
            "detail": [
                {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in errors
            ]
        },
        status_code=422,
    )


def where(error: BaseException) -> str:
    """The innermost frames of a traceback as file:line, without the exception's message."""
    frames = traceback.extract_tb(error.__traceback__)
    return " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames[-4:]))


class ContainErrors:
    """ASGI middleware: an unexpected exception becomes a bare 500 and one log line (type and place only).

    Starlette's own handler for `Exception` answers 500 but re-raises, and uvicorn then logs the full
    traceback, message included; an exception message can carry a submitted value (a household id), so the
    exception stops here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:  # noqa: BLE001 - the point of this middleware
            log.error(
                "unexpected %s while handling %s %s at %s",
                type(error).__name__,
                scope.get("method"),
                scope.get("path"),
                where(error),
            )
            if not started:
                await JSONResponse(INTERNAL_ERROR, status_code=500)(scope, receive, send)


def declared_round(declared: object) -> str | None:
    """A round declared on a file or batch (None when absent or blank); 422 naming `round` when it is not a label."""
    if declared is not None and not isinstance(declared, str):
        raise HTTPException(422, "round: send the survey round as text")
    try:
        return optional_round(declared)
    except BadRoundLabel as bad:
        raise HTTPException(422, f"round: {bad}") from None
