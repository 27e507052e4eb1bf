"""The follow-up worklist: households seen in an earlier round and not yet visited in a round, by village.

Each row carries the household's id as the caller's rule allows: decrypted, or masked (district code and
shape). The id is found where the ingest flow sealed it, in the validated zone object of the visit's
ingestion (`ingestion_id` + `source_row`), archived objects included; once retention purged that object the
id is gone and the row's id is null. Everything else comes from the registry, which outlives the zones.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

import polars as pl
from sqlalchemy import text

from tasks.ingest import households
from tasks.ingest.identity import ENCRYPTED, PII_KEY, household_reference
from tasks.platform.catalog import Catalog
from tasks.platform.storage import LocalStore
from tasks.protection.assignments import Village
from tasks.protection.protect import mask_id, open_values

if TYPE_CHECKING:
    from tasks.runtime import Runtime

SEALED = (ENCRYPTED["household_id"], PII_KEY)  # the sealed id and the wrapped data key that opens it
_WHERE = ("ingestion_id", "source_row")


class FollowupRow(TypedDict):
    """One household due a visit: its reference, id, where it was last seen, and what that visit found."""

    reference: str
    household_id: str | None
    district: str
    cluster: str
    village: str
    last_round: str
    last_status: str | None
    last_risk_band: str | None
    last_visit_at: datetime


@dataclass(frozen=True)
class Worklist:
    """The households due a visit in `survey_round` (None: no round has visits yet), ordered by village."""

    survey_round: str | None
    upcoming: bool  # the round has no visit yet, so it comes after every known round
    rounds: list[str]  # the rounds with visits, in collection order
    households: list[FollowupRow] = field(default_factory=list)
    ids_revealed: bool = False  # whether any id in `households` is decrypted rather than masked


def _read_sealed(rt: Runtime, key: str, wanted: pl.DataFrame) -> pl.DataFrame:
    """The sealed ids of the wanted rows in one zone object (local files are scanned, not read whole)."""
    columns = (*_WHERE, *SEALED)
    if isinstance(rt.store, LocalStore):
        lazy = pl.scan_parquet(rt.store.path(key)).select(columns)
    else:
        lazy = pl.read_parquet(io.BytesIO(rt.store.get(key)), columns=list(columns)).lazy()
    lazy = lazy.with_columns(pl.col("source_row").cast(pl.Int64))
    return lazy.join(wanted.lazy(), on=list(_WHERE), how="semi").collect()


def sealed_ids(rt: Runtime, rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` (ingestion_id, source_row) with each one's sealed id and data key; nulls where none is readable."""
    wanted = rows.select(pl.col("ingestion_id"), pl.col("source_row").cast(pl.Int64))
    found = []
    for ingestion_id in wanted["ingestion_id"].unique().to_list():
        # the catalog's record of the objects, not a store listing: archived ones still read, purged ones do not
        for obj in rt.catalog.zone_objects(ingestion_id, zone="validated", include_archived=True):
            if obj.purged_at is None:
                found.append(_read_sealed(rt, obj.key, wanted.filter(pl.col("ingestion_id") == ingestion_id)))
    empty = wanted.with_columns([pl.lit(None, pl.String).alias(c) for c in SEALED])
    if not found:
        return empty
    sealed = pl.concat(found, how="diagonal_relaxed").unique(list(_WHERE), keep="first")
    return wanted.join(sealed, on=list(_WHERE), how="left", maintain_order="left")


def household_ids(
    rt: Runtime, rows: pl.DataFrame, reveal: Callable[[Village], bool]
) -> list[tuple[str | None, bool]]:
    """Each row's id and whether it is decrypted: `reveal(village)` decides, else the masked shape is given."""
    if rows.height == 0:
        return []
    sealed = sealed_ids(rt, rows)
    clear = open_values(rt.keyring, sealed[PII_KEY].to_list(), sealed[SEALED[0]].to_list(), "household_id")
    places = rows.select("district", "cluster", "village").iter_rows()
    out: list[tuple[str | None, bool]] = []
    for value, place in zip(clear, places, strict=True):
        shown = value is not None and reveal(Village(*place))
        out.append((value, True) if shown else (mask_id(value), False))
    return out


def worklist(
    rt: Runtime,
    survey_round: str | None,
    villages: Sequence[Village] | None,
    reveal: Callable[[Village], bool],
) -> Worklist:
    """Households due a visit in a round (default: the current one), in `villages` (None: all), ids per `reveal`.

    A round with no visit yet comes after every known round: every household seen so far is due.
    """
    known = [r["round"] for r in households.rounds(rt.catalog)]
    chosen = survey_round or (known[-1] if known else None)
    if chosen is None:
        return Worklist(None, upcoming=False, rounds=known)
    frame = households.followups(rt.catalog, chosen, villages)
    ids = household_ids(rt, frame, reveal)
    rows = [
        FollowupRow(
            reference=household_reference(row["household"]),
            household_id=shown,
            district=row["district"],
            cluster=row["cluster"],
            village=row["village"],
            last_round=row["survey_round"],
            last_status=row["observed_status"],
            last_risk_band=row["risk_band"],
            last_visit_at=row["collected_at"],
        )
        for row, (shown, _) in zip(frame.iter_rows(named=True), ids, strict=True)
    ]
    return Worklist(
        chosen,
        upcoming=chosen not in known,
        rounds=known,
        households=rows,
        ids_revealed=any(revealed for _, revealed in ids),
    )


def villages_seen(catalog: Catalog, villages: Sequence[Village]) -> set[Village]:
    """Those of `villages` where the registry last saw some household, matched exactly (one index seek each)."""
    seen: set[Village] = set()
    query = text(
        "SELECT 1 FROM household_registry WHERE district = :d AND cluster = :c AND village = :v LIMIT 1"
    )
    with catalog.engine.connect() as connection:
        for village in dict.fromkeys(villages):
            params = {"d": village.district, "c": village.cluster, "v": village.village}
            if connection.execute(query, params).first() is not None:
                seen.add(village)
    return seen
