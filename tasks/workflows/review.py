"""Quarantine is a review queue: approve held rows into the validated zone (then processed and scored) or reject."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from tasks.ingest.features import add_features
from tasks.ingest.households import record_approved
from tasks.ingest.rounds import ROUND_COLUMN
from tasks.ingest.validate import REASONS
from tasks.ingest.zones import PROCESSED_COLUMNS, VALIDATED_COLUMNS, read_parquet, shape, write_once
from tasks.model.predictions import score_with

if TYPE_CHECKING:
    from tasks.runtime import Runtime

DECISIONS = ("approved", "rejected")


class ReviewError(ValueError):
    """The rows cannot be reviewed as asked (not held, already decided); one line for the reviewer."""


@dataclass(frozen=True)
class Reviewed:
    """What a review did."""

    ingestion_id: str
    rows: list[int]
    decision: str
    objects: list[str]


def held_rows(rt: Runtime, ingestion_id: str | None = None, *, include_decided: bool = False) -> pl.DataFrame:
    """Quarantined rows (with their reasons) that no reviewer has decided on yet, newest ingestions first."""
    keys = [o.key for o in rt.catalog.zone_objects(ingestion_id=ingestion_id, zone="quarantine")]
    if not keys:
        return pl.DataFrame()
    frame = pl.concat([read_parquet(rt.store, k) for k in keys], how="diagonal_relaxed")
    decided = {(r.ingestion_id, r.source_row) for r in rt.catalog.reviews(ingestion_id)}
    if decided and not include_decided:
        done = pl.DataFrame(
            list(decided), schema={"ingestion_id": pl.String, "source_row": pl.Int64}, orient="row"
        )
        frame = frame.join(done, on=["ingestion_id", "source_row"], how="anti")
    return frame.sort(["ingestion_id", "source_row"], descending=[True, False])


def _pick(rt: Runtime, ingestion_id: str, rows: list[int]) -> pl.DataFrame:
    if not rows:
        raise ReviewError("choose at least one row")
    held = held_rows(rt, ingestion_id)
    chosen = held.filter(pl.col("source_row").is_in(rows)) if held.height else held
    missing = sorted(set(rows) - set(chosen["source_row"].to_list() if chosen.height else []))
    if missing:
        raise ReviewError(
            f"row(s) {', '.join(map(str, missing[:10]))} of {ingestion_id} are not waiting for review"
        )
    return chosen


def approve(
    rt: Runtime, ingestion_id: str, rows: list[int], reviewer: str, note: str | None = None
) -> Reviewed:
    """Move held rows into validated and processed, score them with the champion, and record the decision.

    Approved rows become visits in the household registry: a row held as a repeat of another ingestion's
    visit in its round replaces that visit (kept in the history, superseded). Object names come from the
    ingestion and the rows, and rows already visits are left alone, so a retried approval changes nothing.
    """
    chosen = _pick(rt, ingestion_id, rows).drop(REASONS)
    tag = hashlib.sha256(",".join(map(str, sorted(rows))).encode()).hexdigest()[:12]
    # shape() fills columns a row held before they existed (survey_round, for one) with nulls
    processed = shape(add_features(chosen), PROCESSED_COLUMNS, ingestion_id)
    outputs = {"validated": shape(chosen, VALIDATED_COLUMNS, ingestion_id), "processed": processed}
    champion = rt.champion()
    if champion is not None:
        outputs["predictions"] = score_with(champion, processed, rt.settings)
    objects = [
        write_once(rt.store, f"{zone}/{ingestion_id}/review-{tag}.parquet", frame)
        for zone, frame in outputs.items()
    ]
    # the registry before the decision: an approval interrupted here is retried, and a retry changes nothing
    record_approved(
        rt.catalog, ingestion_id, _visit_rows(rt, ingestion_id, processed, outputs.get("predictions"))
    )
    rt.catalog.record_reviews(
        ingestion_id, rows, decision="approved", reviewer=reviewer, note=note, objects=objects
    )
    return Reviewed(ingestion_id, sorted(rows), "approved", [o["key"] for o in objects])


def _visit_rows(
    rt: Runtime, ingestion_id: str, processed: pl.DataFrame, predictions: pl.DataFrame | None
) -> pl.DataFrame:
    """Approved rows as the registry takes them: with their predictions, in the ingestion's current round."""
    rows = processed
    declared = (ingestion := rt.catalog.get(ingestion_id)) and ingestion.survey_round
    if (
        declared
    ):  # declared at landing, or reassigned since (`rtv rounds reassign`): the zones keep the old label
        rows = rows.with_columns(pl.lit(declared).alias(ROUND_COLUMN))
    if predictions is not None and predictions.height:
        scores = predictions.select("source_row", "p_vulnerable", "risk_band", "model_version")
        rows = rows.join(scores, on="source_row", how="left")
    return rows


def reject(
    rt: Runtime, ingestion_id: str, rows: list[int], reviewer: str, note: str | None = None
) -> Reviewed:
    """Close held rows without accepting them; they stay in quarantine for the record."""
    _pick(rt, ingestion_id, rows)
    rt.catalog.record_reviews(ingestion_id, rows, decision="rejected", reviewer=reviewer, note=note)
    return Reviewed(ingestion_id, sorted(rows), "rejected", [])
