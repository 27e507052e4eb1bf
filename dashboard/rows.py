"""Household rows for the Households page, its timeline and exports, identified as the viewer's role allows.

Rows are households (each once, at its latest visit in the chosen rounds) from the catalog's visits; only
the sealed ids are read from the validated zone, by each visit's ingestion and source row.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.cube import Filters, rounds, version
from dashboard.data import TTL_ZONES, key, runtime
from dashboard.zones import scan, zone_keys
from tasks.ingest import household_views
from tasks.ingest.identity import ENCRYPTED, PII_KEY, household_reference
from tasks.runtime import Runtime

SEALED = (ENCRYPTED["household_id"], PII_KEY)  # the sealed id and the wrapped data key that opens it


@st.cache_data(ttl=TTL_ZONES, show_spinner="Finding households …", max_entries=16)
def _household_page(
    fp: str,
    catalog_version: tuple[object, ...],
    selection: household_views.Selection,
    limit: int,
    _rt: Runtime,
) -> pl.DataFrame:
    return household_views.households(_rt.catalog, selection, limit)


def households(filters: Filters, limit: int = 500) -> pl.DataFrame:
    """The most vulnerable `limit` households that match the filters, each at its latest visit (cached).

    How many match: `cube.headline(cube.filter_cube(cube.overview_cube(rounds), filters))`.
    """
    rt = runtime()
    return _household_page(key(rt), version(rt), filters.selection(rounds()), limit, rt)


def all_households(rt: Runtime, filters: Filters) -> pl.DataFrame:
    """Every household that matches the filters, most vulnerable first (for exports; not cached)."""
    every_round = household_views.round_order(rt.catalog)
    return household_views.households(rt.catalog, filters.selection(every_round))


@st.cache_data(ttl=TTL_ZONES, show_spinner=False, max_entries=32)
def _timeline(fp: str, catalog_version: tuple[object, ...], reference: str, _rt: Runtime) -> pl.DataFrame:
    return household_views.timeline(_rt.catalog, reference)


def timeline(reference: str) -> pl.DataFrame:
    """Every final visit of the household with this reference (`hh-…`), by round; BadReference when malformed."""
    rt = runtime()
    household_views.reference_prefix(reference)  # a malformed reference is refused before the cache
    return _timeline(key(rt), version(rt), reference.strip().lower(), rt)


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

    Rows need `ingestion_id` and `source_row` (a visit has them). Either way the id is opened in memory (the
    mask keeps its shape); only `reveal` shows it, and the caller records the `decrypted` audit event for that.
    An id whose validated object was archived is None.
    """
    if rows.height == 0:
        return []
    from tasks.protection.protect import mask_id, open_values

    sealed = _sealed(rt, rows)
    clear = open_values(rt.keyring, sealed[SEALED[1]].to_list(), sealed[SEALED[0]].to_list(), "household_id")
    return clear if reveal else [mask_id(v) for v in clear]


def pseudonyms(rows: pl.DataFrame) -> list[str | None]:
    """A short, stable reference for each row's household that is not PII (the start of its keyed pseudonym)."""
    return [None if p is None else household_reference(p) for p in rows["household_pseudonym"].to_list()]
