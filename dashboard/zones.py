"""Lazy polars scans over zone objects (the sealed household ids live there), and the names counts share.

Counting reads the catalog's visits (`tasks.ingest.household_views`), not these objects: visits outlive the
archive that moves zone objects out of the live zones.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl

from tasks.ingest.household_views import NOT_SCORED, VULNERABLE
from tasks.model.predictions import RISK_BANDS
from tasks.platform.storage import LocalStore
from tasks.runtime import Runtime

__all__ = ["BANDS", "NOT_SCORED", "VULNERABLE", "scan", "zone_keys"]

BANDS = (*RISK_BANDS, NOT_SCORED)


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
