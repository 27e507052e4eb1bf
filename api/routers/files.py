"""POST a survey file (any format the readers take): streamed to disk under the byte cap, landed, queued.

Caps known before landing: bytes (413), the format sniffed from the content (415), and for CSV and JSON
lines the row count (line breaks counted as the file streams in; 413 past RTV_MAX_ROWS). The row count of a
workbook, Parquet file or JSON array is known only once it is parsed: such a file lands and its ingestion is
`rejected` with the reason, its bytes kept in raw/.
"""

from __future__ import annotations

import re
import zipfile
from typing import IO, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.auth import Principal, Submitter
from api.errors import declared_round
from api.limits import capped_stream
from api.models import ROUND_DESCRIPTION, FileAccepted, FileInfo, Refused
from api.routers.surveys import status_url
from flows.dispatch import accept_and_queue
from tasks.ingest.landing import EmptyUpload, TooLarge
from tasks.ingest.readers import RejectedFile, sniff_format
from tasks.ingest.rounds import ROUND_PATTERN

router = APIRouter(prefix="/api/v1", tags=["files"])
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
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


def safe_filename(name: str | None) -> str | None:
    """The client's file name reduced to its last part and plain characters (metadata only, never a path)."""
    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" ._")[:120]
    return cleaned or None


def _line_breaks(handle: IO[bytes]) -> int:
    handle.seek(0)
    count = 0
    while chunk := handle.read(1024 * 1024):
        count += chunk.count(b"\n")
    return count


def _accept(
    api: Any, upload: UploadFile, user: Principal, survey_round: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Check, land and queue one uploaded file under its declared round (if any); returns (status code, body)."""
    settings, handle = api.settings, upload.file
    handle.seek(0, 2)
    size = handle.tell()
    if size > settings.max_upload_bytes:
        raise HTTPException(413, f"the file is larger than the {settings.max_upload_bytes:,}-byte limit")
    handle.seek(0)
    head = handle.read(64 * 1024)
    try:
        fmt = sniff_format(head)
    except RejectedFile as bad:
        raise HTTPException(415 if head.strip() else 422, f"unsupported file: {bad}") from None
    if fmt == "xlsx":
        try:
            if "xl/workbook.xml" not in zipfile.ZipFile(handle).namelist():
                raise HTTPException(415, "the file is a zip archive but not an Excel workbook (.xlsx)")
        except (zipfile.BadZipFile, OSError, ValueError):
            raise HTTPException(415, "the file looks like a zip archive but is damaged") from None
    if fmt in ("csv", "jsonl") and _line_breaks(handle) > settings.max_rows + 1:
        raise HTTPException(413, f"the file has more than the {settings.max_rows:,}-row limit")
    handle.seek(0)
    name = safe_filename(upload.filename)
    try:
        landed = accept_and_queue(
            api.rt,
            handle,
            door="api",
            source_name="api-upload",
            filename=name,
            submitted_by=user.name,
            file_format=fmt,
            queue=api.dispatcher.trigger_file,
            survey_round=survey_round,
        ).landed
    except TooLarge as bad:
        raise HTTPException(413, str(bad)) from None
    except EmptyUpload as bad:
        raise HTTPException(422, str(bad)) from None
    body = FileAccepted(
        ingestion_id=landed.ingestion_id,
        status_url=status_url(landed.ingestion_id),
        outcome="replayed" if landed.is_duplicate else "accepted",
        file_info=FileInfo(filename=name, size_bytes=landed.size_bytes, sha256=landed.sha256, format=fmt),
    )
    return (200 if landed.is_duplicate else 202), body.model_dump()


@router.post(
    "/upload/file",
    status_code=202,
    response_model=FileAccepted,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": FileAccepted, "description": "these bytes were landed before"},
        413: {"model": Refused},
        415: {"model": Refused},
        422: {"model": Refused},
    },
)
async def upload_file(request: Request, user: Submitter) -> Any:
    """A multipart file field `file` (CSV, XLSX, JSON, JSON lines, Parquet, Kobo/ODK export), optional `round`."""
    api = request.app.state.api
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(415, "send the file as multipart/form-data in a field named `file`")
    stream = capped_stream(request, api.settings.max_upload_bytes + MULTIPART_SLACK)
    try:
        form = await MultiPartParser(request.headers, stream, max_files=1, max_fields=5).parse()
    except MultiPartException as bad:
        raise HTTPException(422, f"the multipart body is not valid: {bad.message}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "send the file in a form field named `file`")
        survey_round = declared_round(form.get("round"))  # refused before anything lands
        code, body = await run_in_threadpool(_accept, api, upload, user, survey_round)
    finally:
        await form.close()
    return JSONResponse(body, status_code=code)
