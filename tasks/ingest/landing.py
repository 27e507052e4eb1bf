"""Land raw bytes: hashed, encrypted, stored immutably and catalogued before any door answers."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from tasks.ingest.rounds import optional_round
from tasks.ingest.zones import new_ingestion_id, raw_key
from tasks.platform.catalog import DuplicateFile, Ingestion
from tasks.protection import audit
from tasks.protection.protect import RAW_CHUNK, Keyring, decrypt_stream, encrypt_stream

if TYPE_CHECKING:
    from tasks.runtime import Runtime


class TooLarge(ValueError):
    """The upload exceeds the byte cap; nothing was stored."""


class EmptyUpload(ValueError):
    """The upload has no bytes; nothing was stored."""


@dataclass(frozen=True)
class Landed:
    """Receipt for landed bytes; `duplicate_of` is set when identical bytes were landed before."""

    ingestion_id: str
    sha256: str
    size_bytes: int
    duplicate_of: Ingestion | None = None

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


def _chunks(source: bytes | BinaryIO | Path) -> Iterator[bytes]:
    if isinstance(source, bytes):
        for start in range(0, len(source), RAW_CHUNK):
            yield source[start : start + RAW_CHUNK]
        return
    handle = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
    try:
        while chunk := handle.read(RAW_CHUNK):
            yield chunk
    finally:
        if isinstance(source, Path):
            handle.close()


@dataclass(frozen=True)
class Sealed:
    """Small bytes ready to land: the plaintext's sha256 and size, and the encrypted object."""

    sha256: str
    size_bytes: int
    ciphertext: bytes


def seal(keyring: Keyring, data: bytes) -> Sealed:
    """Encrypt bytes held in memory exactly as `land` does a stream (EmptyUpload for none)."""
    if not data:
        raise EmptyUpload("the upload is empty")
    return Sealed(
        hashlib.sha256(data).hexdigest(), len(data), b"".join(encrypt_stream(keyring, _chunks(data)))
    )


def ingestion_row(
    ingestion_id: str,
    sha256: str,
    size: int,
    *,
    source_name: str,
    door: str,
    filename: str | None = None,
    submitted_by: str | None = None,
    survey_round: str | None = None,
) -> dict[str, Any]:
    """The catalog fields of a `landed` ingestion whose object is at its raw key (the round validated before)."""
    return {
        "id": ingestion_id,
        "source": source_name[:120],
        "door": door,
        "filename": (filename or "")[-255:] or None,
        "sha256": sha256,
        "size_bytes": size,
        "raw_key": raw_key(ingestion_id),
        "status": "landed",
        "submitted_by": submitted_by,
        "survey_round": survey_round,
    }


def land(
    rt: Runtime,
    source: bytes | BinaryIO | Path,
    *,
    source_name: str,
    door: str,
    filename: str | None = None,
    submitted_by: str | None = None,
    survey_round: str | None = None,
) -> Landed:
    """Store the bytes encrypted in the raw zone and catalog them as `landed`; identical bytes are not stored twice.

    The client's file name is kept as metadata only; the object key comes from the ingestion id. A declared
    `survey_round` (blank: none) is checked before any byte is read (BadRoundLabel) and kept on the catalog
    row only: it is not part of the sha256, so the same bytes are a duplicate whatever round is declared.
    """
    survey_round = optional_round(survey_round)
    limit = rt.settings.max_upload_bytes
    digest = hashlib.sha256()
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in _chunks(source):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the upload is larger than the {limit:,}-byte limit")
            digest.update(chunk)
            yield chunk

    ingestion_id = new_ingestion_id()
    key = raw_key(ingestion_id)
    staging_dir = rt.settings.data_dir / ".landing"  # next to the zones, so the local store can hard-link
    staging_dir.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix="rtv-land-", dir=staging_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in encrypt_stream(rt.keyring, counted()):
                handle.write(piece)
        if size == 0:
            raise EmptyUpload("the upload is empty")
        sha256 = digest.hexdigest()
        earlier = rt.catalog.find_by_sha256(sha256)
        if earlier is not None:
            return Landed(earlier.id, sha256, size, duplicate_of=earlier)
        rt.store.put_file(key, Path(staging))  # durable before the catalog row exists, so before any 2xx
    finally:
        Path(staging).unlink(missing_ok=True)
    try:
        rt.catalog.add_ingestion(
            **ingestion_row(
                ingestion_id,
                sha256,
                size,
                source_name=source_name,
                door=door,
                filename=filename,
                submitted_by=submitted_by,
                survey_round=survey_round,
            )
        )
    except DuplicateFile as race:  # the same bytes landed concurrently: keep the first copy only
        rt.store.delete(key)
        return Landed(race.earlier.id, sha256, size, duplicate_of=race.earlier)
    return Landed(ingestion_id, sha256, size)


def accept_file(
    rt: Runtime,
    source: bytes | BinaryIO | Path,
    *,
    door: str,
    source_name: str,
    filename: str | None = None,
    submitted_by: str | None = None,
    file_format: str | None = None,
    survey_round: str | None = None,
) -> Landed:
    """Land a file and, unless identical bytes were landed before, audit it as `landed` by the submitter (or door).

    Every door writes the same detail: door, size, the format when the door sniffed it and the declared round
    (or None). Never the file name (a clerk may name a file after a person, and audit rows are never erased) nor
    anything read from the file; the ingestion id, the row's target, leads to the catalog's metadata.
    """
    survey_round = optional_round(survey_round)  # refused before anything lands
    landed = land(
        rt,
        source,
        source_name=source_name,
        door=door,
        filename=filename,
        submitted_by=submitted_by,
        survey_round=survey_round,
    )
    if not landed.is_duplicate:
        audit.record(
            rt.catalog,
            submitted_by or door,
            "landed",
            landed.ingestion_id,
            {"door": door, "bytes": landed.size_bytes, "format": file_format, "round": survey_round},
        )
    return landed


def read_raw(rt: Runtime, ingestion: Ingestion) -> bytes:
    """The plaintext bytes of a landed file, decrypted as they stream in (the ciphertext is never all in memory)."""
    with rt.store.open(ingestion.raw_key) as handle:
        return b"".join(decrypt_stream(rt.keyring, handle))
