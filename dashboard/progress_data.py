"""Cached loaders of the Progress and Follow-up pages: two rounds compared, the worklist, masked ids, exports.

Entries are keyed by the Settings fingerprint, the chosen rounds and the catalog's version of the counted
visits (`dashboard.cube.version`, the one the Overview and Households pages use: new or finalised visits,
approvals, backfilled scores, relabelled rounds), so new data shows at the next redraw and a warm redraw
never compares again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import streamlit as st

from dashboard import exports
from dashboard.data import key
from dashboard.labels import label
from dashboard.rows import household_ids
from tasks.ingest import households, progress
from tasks.protection import audit
from tasks.runtime import Runtime

TTL = 1800  # seconds; a comparison at 1M households costs tens of seconds cold (docs/progress.md)
SHOWN_ROWS = 500  # household rows drawn on a page (and given masked ids); exports hold them all

Version = tuple[Any, ...]


@st.cache_data(ttl=TTL, show_spinner="Comparing the two rounds …", max_entries=8)
def _comparison(
    fp: str, from_round: str, to_round: str, version: Version, _rt: Runtime
) -> progress.Comparison:
    return progress.compare(_rt.catalog, from_round, to_round)


def comparison(rt: Runtime, from_round: str, to_round: str, version: Version) -> progress.Comparison:
    """Two rounds compared for every district (a district is a filter on the result: no second pass)."""
    return _comparison(key(rt), from_round, to_round, version, rt)


@st.cache_data(ttl=TTL, show_spinner="Finding the households due a visit …", max_entries=8)
def _followups(fp: str, current: str, version: Version, _rt: Runtime) -> pl.DataFrame:
    due = households.followups(_rt.catalog, current)
    return due.with_columns(progress.reference(pl.col("household")).alias("household_ref"))


def followups(rt: Runtime, current: str, version: Version) -> pl.DataFrame:
    """Households seen before `current` and not yet in it, with their last visit and reference, by village."""
    return _followups(key(rt), current, version, rt)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=32)
def _masked(fp: str, where: tuple[tuple[str, int], ...], _rt: Runtime) -> list[str | None]:
    rows = pl.DataFrame(where, schema={"ingestion_id": pl.String, "source_row": pl.Int64}, orient="row")
    return household_ids(_rt, rows, reveal=False)


def identified(rt: Runtime, rows: pl.DataFrame, *, reveal: bool) -> pl.DataFrame:
    """`rows` with `household` as the viewer may see it: decrypted when `reveal` (never cached), else masked.

    The caller records the `decrypted` audit event when `reveal`.
    """
    where = rows.select("ingestion_id", "source_row")
    shown = (
        household_ids(rt, where, reveal=True) if reveal else _masked(key(rt), tuple(where.iter_rows()), rt)
    )
    return rows.with_columns(pl.Series("household", shown, dtype=pl.String))


def export(
    rt: Runtime,
    rows: pl.DataFrame,
    columns: Mapping[str, str],
    fmt: str,
    *,
    actor: str,
    reveal: bool,
    target: str,
    detail: dict[str, Any],
) -> bytes:
    """CSV or Excel bytes of `rows` (`columns`: name → heading), ids as the viewer may see them; audited.

    `exported` is recorded with `detail`, and `decrypted` too when the ids are shown in clear.
    """
    named = identified(rt, rows, reveal=reveal) if rows.height else rows.with_columns(household=pl.lit(None))
    frame = named.select([pl.col(c).alias(heading) for c, heading in columns.items()])
    content = exports.to_excel(frame) if fmt == "xlsx" else exports.to_csv(frame)
    if reveal and frame.height:
        audit.record(rt.catalog, actor, "decrypted", target, {"rows": frame.height, "purpose": "export"})
    audit.record(rt.catalog, actor, "exported", target, {"format": fmt, "rows": frame.height, **detail})
    return content


def headings(*names: str) -> dict[str, str]:
    """Column name → its label on screen and in exports."""
    return {n: label(n) for n in names}
