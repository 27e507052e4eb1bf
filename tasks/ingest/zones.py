"""Zone layout: object keys derived from ingestion ids (never from client names or personal data), Parquet I/O."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from secrets import token_hex
from typing import Final, TypedDict

import polars as pl

from tasks.ingest import contract
from tasks.ingest.features import FEATURE_NAMES
from tasks.ingest.identity import ENCRYPTED, IDENTITY, PII_KEY, PSEUDONYMS
from tasks.ingest.rounds import ROUND_COLUMN
from tasks.ingest.validate import REASON_DTYPE, REASONS
from tasks.platform.storage import ObjectStore

PARQUET_COMPRESSION: Final = "zstd"

_SURVEY = tuple(n for n in contract.CANONICAL_NAMES if n not in contract.PII_COLUMNS)
_META = tuple(n for n in contract.METADATA_NAMES if n not in contract.PII_COLUMNS)
IDENTIFIER_COLUMNS = (
    PSEUDONYMS["household_id"],
    ENCRYPTED["household_id"],
    PSEUDONYMS["officer_id"],
    ENCRYPTED["officer_id"],
    PSEUDONYMS["device_id"],
    ENCRYPTED["device_id"],
    PII_KEY,
)
# survey_round: the row's campaign (tasks/ingest/rounds.py), the one column every zone adds to the contract's
VALIDATED_COLUMNS = (
    "ingestion_id",
    "source_row",
    "row_identity",
    *IDENTIFIER_COLUMNS,
    *_SURVEY,
    *_META,
    ROUND_COLUMN,
)
QUARANTINE_COLUMNS = (*VALIDATED_COLUMNS, REASONS)
PROCESSED_COLUMNS = (*VALIDATED_COLUMNS, "progress_status", "is_vulnerable", *FEATURE_NAMES)


def new_ingestion_id(now: datetime | None = None) -> str:
    """Sortable, unguessable ingestion id: ing-YYYYMMDD-HHMMSS-<10 hex>."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"ing-{stamp}-{token_hex(5)}"


def raw_key(ingestion_id: str) -> str:
    return f"raw/{ingestion_id}.enc"


def part_key(zone: str, ingestion_id: str, part: int) -> str:
    return f"{zone}/{ingestion_id}/part-{part:05d}.parquet"


def report_key(ingestion_id: str, name: str = "import_report.json") -> str:
    return f"reports/{ingestion_id}/{name}"


def shape(frame: pl.DataFrame, columns: tuple[str, ...], ingestion_id: str) -> pl.DataFrame:
    """Rename internal columns and select a zone's fixed column set, adding nulls for anything absent."""
    renamed = frame.rename(
        {k: v for k, v in {"_row": "source_row", IDENTITY: "row_identity"}.items() if k in frame.columns}
    )
    renamed = renamed.with_columns(pl.lit(ingestion_id).alias("ingestion_id"))
    missing = [c for c in columns if c not in renamed.columns]
    if missing:
        renamed = renamed.with_columns([pl.lit(None, dtype=_dtype(c)).alias(c) for c in missing])
    return renamed.select(columns)


def _dtype(name: str) -> pl.DataType:
    if name in contract.BY_NAME:
        return contract.BY_NAME[name].polars_dtype
    if name == REASONS:
        return REASON_DTYPE
    if name == "is_vulnerable":
        return pl.Boolean()
    if name in FEATURE_NAMES:
        return pl.Float64()
    return pl.Int64() if name == "source_row" else pl.String()


def write_parquet(store: ObjectStore, key: str, frame: pl.DataFrame, *, overwrite: bool = False) -> int:
    """Write a frame as one zstd Parquet object; returns its size in bytes."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression=PARQUET_COMPRESSION, compression_level=1, statistics=True)
    data = buffer.getvalue()
    store.put(key, data, overwrite=overwrite)
    return len(data)


class ZoneObjectRow(TypedDict):
    """The catalog's lineage row of one written zone object."""

    zone: str
    key: str
    rows: int
    size_bytes: int


def write_once(store: ObjectStore, key: str, frame: pl.DataFrame) -> ZoneObjectRow:
    """Write a zone object unless its key exists; returns its lineage row (zone, key, rows, size_bytes).

    Keys are derived from ingestion ids and row sets, and writes are atomic, so an existing object is the
    complete result of an earlier attempt with the same rows: a re-run keeps it and rewrites nothing.
    """
    size = store.size(key) if store.exists(key) else write_parquet(store, key, frame)
    return {"zone": key.split("/", 1)[0], "key": key, "rows": frame.height, "size_bytes": size}


def read_parquet(store: ObjectStore, key: str) -> pl.DataFrame:
    """Read one Parquet object."""
    return pl.read_parquet(io.BytesIO(store.get(key)))


def read_zone(store: ObjectStore, zone: str, ingestion_id: str | None = None) -> pl.DataFrame:
    """Every Parquet part of a zone (or of one ingestion in it), concatenated; empty when there is none."""
    prefix = f"{zone}/{ingestion_id}/" if ingestion_id else f"{zone}/"
    keys = [k for k in store.list(prefix) if k.endswith(".parquet")]
    if not keys:
        return pl.DataFrame()
    return pl.concat([read_parquet(store, k) for k in keys], how="diagonal_relaxed")
