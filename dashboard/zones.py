"""Lazy polars scans over the zones: one row per household, from predictions or (unscored) processed objects."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl

from tasks.ingest import contract
from tasks.model.predictions import RISK_BANDS
from tasks.platform.storage import LocalStore
from tasks.runtime import Runtime

NOT_SCORED = "Not scored"
BANDS = (*RISK_BANDS, NOT_SCORED)
VULNERABLE = tuple(sorted(contract.VULNERABLE_STATUSES))
SCORED_COLUMNS = (
    "ingestion_id",
    "source_row",
    "household_pseudonym",
    "district",
    "cluster",
    "village",
    "p_vulnerable",
    "expected_per_day",
    "predicted_status",
    "risk_band",
    "observed_status",
    "model_version",
)
UNSCORED_COLUMNS = (
    "ingestion_id",
    "source_row",
    "household_pseudonym",
    "district",
    "cluster",
    "village",
    "progress_status",
)


def _local_root(store: Any) -> Path | None:
    if isinstance(store, LocalStore):
        return store.root
    primary = getattr(store, "primary", None)  # ReplicatedStore
    return primary.root if isinstance(primary, LocalStore) else None


def zone_keys(rt: Runtime, zone: str) -> tuple[str, ...]:
    """Parquet objects of a zone, sorted."""
    return tuple(k for k in rt.store.list(f"{zone}/") if k.endswith(".parquet"))


def scan(rt: Runtime, keys: tuple[str, ...], columns: tuple[str, ...]) -> pl.LazyFrame:
    """A lazy frame over zone objects: local files are scanned in place, remote objects read into memory."""
    root = _local_root(rt.store)
    frames = []
    for k in keys:
        path = root / k if root is not None else None
        lazy = (
            pl.scan_parquet(path)
            if path is not None and path.is_file()
            else pl.read_parquet(io.BytesIO(rt.store.get(k))).lazy()
        )
        names = lazy.collect_schema().names()
        frames.append(lazy.select([c for c in columns if c in names]))
    return pl.concat(frames, how="diagonal_relaxed")


def household_parts(rt: Runtime) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Prediction objects, and processed objects nobody scored (no champion when they were written).

    Ingest and approval write a predictions object next to each processed object, with the same name and
    the same rows, so matching names is enough to find rows without a prediction.
    """
    predictions = zone_keys(rt, "predictions")
    scored = {k.split("/", 1)[1] for k in predictions}
    unscored = tuple(k for k in zone_keys(rt, "processed") if k.split("/", 1)[1] not in scored)
    return predictions, unscored


def households_lazy(
    rt: Runtime, predictions: tuple[str, ...], unscored: tuple[str, ...]
) -> pl.LazyFrame | None:
    """One row per household with `status` (observed, else predicted), `risk_band` and the landing `date`."""
    parts = []
    if predictions:
        parts.append(scan(rt, predictions, SCORED_COLUMNS))
    if unscored:
        parts.append(
            scan(rt, unscored, UNSCORED_COLUMNS)
            .rename({"progress_status": "observed_status"})
            .with_columns(pl.lit(NOT_SCORED).alias("risk_band"))
        )
    if not parts:
        return None
    frame = pl.concat(parts, how="diagonal_relaxed")
    names = frame.collect_schema().names()
    frame = frame.with_columns(
        [
            pl.lit(None, pl.String).alias(c)
            for c in ("predicted_status", "observed_status", "model_version")
            if c not in names
        ]
        + [pl.lit(None, pl.Float64).alias(c) for c in ("p_vulnerable", "expected_per_day") if c not in names]
    )
    return frame.with_columns(
        pl.coalesce("observed_status", "predicted_status").alias("status"),
        pl.col("risk_band").fill_null(NOT_SCORED),
        # ingestion ids are ing-YYYYMMDD-...: the landing date without a catalog lookup per row
        pl.col("ingestion_id").str.slice(4, 8).str.strptime(pl.Date, "%Y%m%d", strict=False).alias("date"),
    )
