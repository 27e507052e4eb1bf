"""Household rows for the Households page and exports, identified as the viewer's role allows."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.cube import Filters
from dashboard.data import TTL_ZONES, key, runtime
from dashboard.zones import household_parts, households_lazy, scan, zone_keys
from tasks.ingest.identity import ENCRYPTED, PII_KEY
from tasks.runtime import Runtime

SEALED = (ENCRYPTED["household_id"], PII_KEY)  # the sealed id and the wrapped data key that opens it


@st.cache_data(ttl=TTL_ZONES, show_spinner="Finding households …", max_entries=16)
def _household_page(
    fp: str,
    predictions: tuple[str, ...],
    unscored: tuple[str, ...],
    filters: Filters,
    limit: int,
    _rt: Runtime,
) -> tuple[pl.DataFrame, int]:
    frame = households_lazy(_rt, predictions, unscored)
    if frame is None:
        return pl.DataFrame(), 0
    chosen = frame.filter(filters.expr(frame.collect_schema().names()))
    total = chosen.select(pl.len()).collect().item()
    page = chosen.sort("p_vulnerable", descending=True, nulls_last=True).head(limit).collect()
    return page, int(total)


def households(filters: Filters, limit: int = 500) -> tuple[pl.DataFrame, int]:
    """The most vulnerable `limit` households that match the filters, and how many match in all."""
    rt = runtime()
    predictions, unscored = household_parts(rt)
    return _household_page(key(rt), predictions, unscored, filters, limit, rt)


def all_households(rt: Runtime, filters: Filters) -> pl.DataFrame:
    """Every household that matches the filters, most vulnerable first (for exports; not cached)."""
    frame = households_lazy(rt, *household_parts(rt))
    if frame is None:
        return pl.DataFrame()
    return (
        frame.filter(filters.expr(frame.collect_schema().names()))
        .sort("p_vulnerable", descending=True, nulls_last=True)
        .collect()
    )


def _sealed(rt: Runtime, rows: pl.DataFrame) -> pl.DataFrame:
    """The sealed household id and data key of each row: from the rows themselves (quarantine) or validated."""
    wanted = rows.select("ingestion_id", "source_row")
    if set(SEALED) <= set(rows.columns):
        return rows.select(*wanted.columns, *SEALED)
    ingestions = set(wanted["ingestion_id"].to_list())
    keys = tuple(k for k in zone_keys(rt, "validated") if k.split("/")[1] in ingestions)
    found = (
        (
            scan(rt, keys, ("ingestion_id", "source_row", *SEALED))
            .join(wanted.lazy(), on=["ingestion_id", "source_row"], how="semi")
            .collect()
        )
        if keys
        else None
    )
    if found is None or found.height == 0:
        return wanted.with_columns([pl.lit(None, pl.String).alias(c) for c in SEALED])
    found = found.unique(["ingestion_id", "source_row"], keep="first")
    return wanted.join(found, on=["ingestion_id", "source_row"], how="left", maintain_order="left")


def household_ids(rt: Runtime, rows: pl.DataFrame, *, reveal: bool) -> list[str | None]:
    """Each row's household id: decrypted when `reveal`, else masked (`RUB-•••-•-•••`, district and shape only).

    Either way the id is opened in memory (the mask keeps its shape); only `reveal` shows it, and the caller
    records the `decrypted` audit event for that.
    """
    if rows.height == 0:
        return []
    from tasks.protection.protect import mask_id, open_values

    sealed = _sealed(rt, rows)
    clear = open_values(rt.keyring, sealed[SEALED[1]].to_list(), sealed[SEALED[0]].to_list(), "household_id")
    return clear if reveal else [mask_id(v) for v in clear]


def pseudonyms(rows: pl.DataFrame) -> list[str | None]:
    """A short, stable reference for each row's household that is not PII (the start of its keyed pseudonym)."""
    return [None if p is None else f"hh-{p[:10]}" for p in rows["household_pseudonym"].to_list()]
