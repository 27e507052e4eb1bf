"""Ingest flow: one landed file → validated, quarantine, processed zones, catalog and an import report."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import polars as pl
from prefect import Flow, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import FlowRun, State
from prefect.runtime import flow_run

from flows.hooks import alert_failure
from flows.runners import partition_runner
from tasks.ingest import contract, households
from tasks.ingest import rules as rule_tables
from tasks.ingest.conform import Conformed, NotASurveyTable, conform, score_header
from tasks.ingest.features import add_features
from tasks.ingest.identity import (
    IDENTITY,
    Deduplicated,
    add_identity,
    drop_duplicates,
    identity_keys,
    protect_identifiers,
)
from tasks.ingest.landing import read_raw
from tasks.ingest.readers import RejectedFile, read_table
from tasks.ingest.report import ImportReport, utc_iso
from tasks.ingest.rounds import ROUND_COLUMN, assign_rounds, round_counts
from tasks.ingest.validate import HELD, REASONS, Validation, validate
from tasks.ingest.zones import (
    PROCESSED_COLUMNS,
    QUARANTINE_COLUMNS,
    VALIDATED_COLUMNS,
    ZoneObjectRow,
    part_key,
    read_parquet,
    report_key,
    shape,
    write_once,
)
from tasks.model.predictions import PredictionSummary, score_with, summarise
from tasks.model.registry import Champion
from tasks.monitoring import drift
from tasks.monitoring import thresholds as monitoring
from tasks.monitoring.drift_stats import DriftReport
from tasks.platform.catalog import Ingestion
from tasks.platform.retry import RetryPolicy, cpu_task, io_task
from tasks.platform.settings import Settings
from tasks.runtime import Runtime, runtime_for

PIECE_BYTES = 128 * 1024 * 1024  # a large CSV is parsed and conformed ~128 MB at a time

# ---- steps (thin task wrappers around plain functions) -----------------------------------------------


@io_task
def start_ingestion(rt: Runtime, ingestion_id: str) -> Ingestion:
    """Mark the ingestion running; fail clearly if it was never landed."""
    ingestion = rt.catalog.get(ingestion_id)
    if ingestion is None:
        raise LookupError(f"no landed ingestion {ingestion_id!r}")
    rt.catalog.start(ingestion_id, str(flow_run.get_id() or "") or None)
    return ingestion


@dataclass(frozen=True)
class Rejected:
    """The file cannot be read as a survey table; `reason` is one line for the data clerk."""

    reason: str


@io_task
def read_landed(rt: Runtime, ingestion: Ingestion) -> tuple[str, Conformed] | Rejected:
    """Decrypt the landed bytes, sniff and read the table, conform it; bad input is an outcome, not an error.

    One step so the bytes and the text table are dropped as soon as they are used (they are the largest
    objects of a run); returns the format and the conformed table.
    """
    data = read_raw(rt, ingestion)
    try:
        table = read_table(data, rt.caps, score_header=score_header, piece_bytes=PIECE_BYTES)
        return table.format, conform(table.frames(), typed=table.typed)
    except (RejectedFile, NotASurveyTable) as bad:
        return Rejected(str(bad))


@io_task
def identify_rows(rt: Runtime, ingestion_id: str, conformed: Conformed) -> Deduplicated:
    """Identify rows, drop duplicates against this batch and the catalog, then encrypt identifiers."""
    identified = add_identity(conformed.frame, rt.keyring)
    keys = identity_keys(identified)
    # The catalog claim waits on the database while encryption keeps the CPU busy: run them side by side.
    with ThreadPoolExecutor(1, thread_name_prefix="claim") as pool:
        claimed = pool.submit(rt.catalog.claim_identities, ingestion_id, keys)
        protected = protect_identifiers(identified, rt.keyring)
        earlier = claimed.result()
    return drop_duplicates(protected, earlier)


@io_task
def flag_repeats_in_round(rt: Runtime, ingestion_id: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Mark rows whose household already has a visit of another ingestion in the same survey round.

    An API edit names the visit it replaces (`replaces_identity`): it does not collide with that visit, and
    replaces it when its ingestion completes.
    """
    edits = households.edited_visits(rt.catalog, ingestion_id)
    if edits.height and "instance_id" in frame.columns:
        frame = frame.join(
            edits,
            on=["instance_id", rule_tables.PSEUDONYM],
            how="left",
            maintain_order="left",
        )
    repeated = households.repeated_in_round(rt.catalog, ingestion_id, frame)
    return frame.with_columns(repeated.alias(rule_tables.REPEATED_IN_ROUND))


@io_task
def record_household_visits(
    rt: Runtime, ingestion_id: str, validation: Validation, objects: list[ZoneObjectRow]
) -> int:
    """This ingestion's accepted rows as pending visits in the registry, with their predictions."""
    accepted = validation.rows.filter(~pl.col(HELD))
    outcome = households.record_visits(rt.catalog, ingestion_id, accepted)
    keys = [o["key"] for o in objects if o["zone"] == "predictions"]
    if keys and accepted.height:
        scored = pl.concat([read_parquet(rt.store, k) for k in keys], how="diagonal_relaxed")
        identities = accepted.select(
            pl.col("_row").alias("source_row"), pl.col(IDENTITY).alias("row_identity")
        )
        households.update_predictions(rt.catalog, scored.join(identities, on="source_row", how="inner"))
    return outcome.recorded


@cpu_task
def validate_rows(rt: Runtime, frame: pl.DataFrame, defects: pl.DataFrame) -> Validation:
    """Run the GX suite and the row masks; every row gets an outcome."""
    s = rt.settings
    rules = rule_tables.build_rules(
        max_rows=s.max_rows,
        completeness_threshold=s.completeness_threshold,
        distribution_min_rows=s.distribution_min_rows,
    )
    return validate(frame, rules, defects)


@io_task
def load_champion(rt: Runtime) -> Champion | None:
    """The model that scores accepted rows, if one has been promoted."""
    return rt.champion()


@io_task
def write_partition(
    rt: Runtime,
    ingestion_id: str,
    part: int,
    accepted: pl.DataFrame,
    quarantined: pl.DataFrame,
    champion: Champion | None,
) -> list[ZoneObjectRow]:
    """Write one partition to the validated, quarantine, processed and predictions zones (skipping parts written)."""
    processed = shape(add_features(accepted), PROCESSED_COLUMNS, ingestion_id)
    outputs = {
        "validated": shape(accepted, VALIDATED_COLUMNS, ingestion_id),
        "quarantine": shape(quarantined, QUARANTINE_COLUMNS, ingestion_id),
        "processed": processed,
    }
    if champion is not None:
        outputs["predictions"] = score_with(champion, processed, rt.settings)
    return [
        write_once(rt.store, part_key(zone, ingestion_id, part), frame)
        for zone, frame in outputs.items()
        if frame.height
    ]


@io_task
def summarise_predictions(rt: Runtime, objects: list[ZoneObjectRow]) -> PredictionSummary:
    """Households per predicted status and risk band across this ingestion's prediction parts."""
    keys = [o["key"] for o in objects if o["zone"] == "predictions"]
    if not keys:
        return {}
    return summarise(pl.concat([read_parquet(rt.store, k) for k in keys]))


@io_task
def publish_data_docs(rt: Runtime, ingestion_id: str, docs_dir: Path | None) -> str | None:
    """Copy the GX Data Docs site into the reports zone; returns the index location."""
    if docs_dir is None:
        return None
    for path in sorted(docs_dir.rglob("*")):
        if path.is_file():
            rt.store.put_file(
                report_key(ingestion_id, f"data_docs/{path.relative_to(docs_dir).as_posix()}"),
                path,
                overwrite=True,
            )
    shutil.rmtree(docs_dir, ignore_errors=True)
    return rt.store.uri(report_key(ingestion_id, "data_docs/index.html"))


@io_task
def record_report(
    rt: Runtime, report: ImportReport, validation: Validation | None, objects: list[dict[str, Any]]
) -> None:
    """Store the report in the reports zone and the catalog (status, counts, rules, metrics, lineage)."""
    rt.store.put(report_key(report.ingestion_id), report.model_dump_json(indent=2).encode(), overwrite=True)
    metrics = {
        "completeness": report.completeness or 0.0,
        "rows_received": report.rows_received,
        "rows_accepted": report.rows_accepted,
        "rows_quarantined": report.rows_quarantined,
        "rows_duplicate": report.rows_duplicate,
    }
    if report.pass_rate is not None:
        metrics["pass_rate"] = report.pass_rate
    metrics.update(
        {
            f"check.{k}": float(v["observed"])
            for k, v in report.batch_checks.items()
            if isinstance(v.get("observed"), int | float)
        }
    )
    rt.catalog.record_result(
        report.ingestion_id,
        status=report.status,
        report=report.model_dump(mode="json"),
        rule_outcomes=validation.outcomes if validation else [],
        metrics=metrics,
        objects=objects,
    )


@io_task
def measure_drift(rt: Runtime, ingestion_id: str, accepted: pl.DataFrame) -> DriftReport | None:
    """Drift of the accepted rows against the champion's training snapshot; stored, and mailed when flagged."""
    return drift.measure(rt, accepted, ingestion_id=ingestion_id)


@io_task
def check_thresholds(rt: Runtime, ingestion_id: str) -> list[monitoring.BreachRecord]:
    """This ingestion's quality thresholds; each breach is mailed."""
    return monitoring.check_ingestion(rt, ingestion_id)


def _monitor(rt: Runtime, io: RetryPolicy, ingestion_id: str, validation: Validation, watched: bool) -> None:
    """Drift (when a champion exists) and thresholds; advisory, so a failure is logged and the ingestion stands."""
    logger = get_run_logger()
    if watched:
        try:
            accepted = validation.rows.select(*contract.MONITORED_COLUMNS, HELD).filter(~pl.col(HELD))
            io(measure_drift)(rt, ingestion_id, accepted)
        except Exception as error:  # noqa: BLE001 - the rows are stored already; drift must not undo that
            logger.warning("drift check of %s failed: %s", ingestion_id, error)
    try:
        io(check_thresholds)(rt, ingestion_id)
    except Exception as error:  # noqa: BLE001 - same: monitoring never fails an ingestion
        logger.warning("threshold check of %s failed: %s", ingestion_id, error)


# ---- flow ----------------------------------------------------------------------------------------------


@io_task
def finalise_visits(rt: Runtime, ingestion_id: str) -> int:
    """Make the ingestion's visits final and refresh its households in the registry."""
    outcome = households.finalise_ingestion(rt.catalog, ingestion_id)
    if outcome.repeated:  # another ingestion of the same round completed first, between flagging and here
        get_run_logger().warning(
            "%s: %d visits lost a race for their household and round", ingestion_id, len(outcome.repeated)
        )
    return outcome.finalised


def _mark_failed(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """on_failure hook: the catalog says `failed` with the one-line reason, so `rtv rerun` can pick it up."""
    ingestion_id = flow_run.parameters.get("ingestion_id")
    if ingestion_id:
        rt = runtime_for(Settings())
        rt.catalog.fail(ingestion_id, "failed", (state.message or "flow failed").splitlines()[0])
        # pending visits would hold a corrected file's rows as repeats; `rtv rerun` records them again
        households.discard_ingestion(rt.catalog, ingestion_id)


def _stopwatch(laps: dict[str, float]) -> Any:
    """A function that records the seconds since its previous call under a step name."""
    last = [time.monotonic()]

    def lap(step: str) -> None:
        now = time.monotonic()
        laps[step] = round(now - last[0], 2)
        last[0] = now

    return lap


def _base_report(ingestion: Ingestion, started: float, **fields: Any) -> ImportReport:
    return ImportReport(
        ingestion_id=ingestion.id,
        source=ingestion.source,
        door=ingestion.door,
        sha256=ingestion.sha256,
        size_bytes=ingestion.size_bytes,
        received_at=utc_iso(ingestion.received_at),
        finished_at=datetime.now(UTC).isoformat(),
        duration_s=round(time.monotonic() - started, 2),
        **fields,
    )


def _publish(report: ImportReport) -> dict[str, Any]:
    create_markdown_artifact(
        report.to_markdown(),
        key=f"import-report-{report.ingestion_id}",
        description=f"Import report {report.ingestion_id}",
    )
    return report.model_dump(mode="json")


def run_ingest(rt: Runtime, ingestion_id: str) -> dict[str, Any]:
    """The ingest steps, in order; returns the import report as a dict."""
    logger = get_run_logger()
    started = time.monotonic()
    io = RetryPolicy(rt.settings)

    laps: dict[str, float] = {}
    lap = _stopwatch(laps)
    # 1. Landed → running
    ingestion = io(start_ingestion)(rt, ingestion_id)
    # 2. Read the raw bytes back (format sniffed from the bytes) and conform to the contract
    outcome = io(read_landed)(rt, ingestion)
    lap("read_conform")
    if isinstance(outcome, Rejected):
        report = _base_report(ingestion, started, status="rejected", reason=outcome.reason)
        io(record_report)(rt, report, None, [])
        logger.warning("ingestion %s rejected: %s", ingestion_id, outcome.reason)
        return _publish(report)
    file_format, conformed = outcome
    # Every row's survey round: declared at landing, else its submitted_at, else the landing time
    conformed.frame = assign_rounds(
        conformed.frame,
        declared=ingestion.survey_round,
        landed_at=ingestion.received_at,
        calendar=rt.settings.round_calendar,
    )
    # 3. Identity, duplicates, protection of identifiers
    completeness = rule_tables.completeness(conformed.frame)
    received = conformed.frame.height
    deduplicated = io(identify_rows)(rt, ingestion_id, conformed)
    conformed.frame = conformed.frame.clear()  # the last plaintext identifiers; also frees its memory
    lap("identify_protect")
    # 4. Validate with Great Expectations: accepted vs quarantined, with reasons (one visit per household
    # and round: a household another ingestion already visited in this round is held for review)
    deduplicated.frame = io(flag_repeats_in_round)(rt, ingestion_id, deduplicated.frame)
    validation = validate_rows(rt, deduplicated.frame, conformed.defects)
    deduplicated.frame = deduplicated.frame.clear()  # validation.rows holds the same columns
    lap("validate")
    # 5. Transform, score with the champion, and write the zones, partition by partition
    champion = io(load_champion)(rt)
    size = rt.settings.partition_rows
    parts = max(-(-validation.rows.height // size), 1)
    with partition_runner(rt.settings) as runner:
        futures = [
            runner.submit(
                io(write_partition),
                parameters=dict(
                    rt=rt,
                    ingestion_id=ingestion_id,
                    part=n,
                    accepted=accepted,
                    quarantined=quarantined,
                    champion=champion,
                ),
            )
            for n in range(parts)
            for accepted, quarantined in (validation.split(n * size, size),)
        ]
        objects = [obj for future in futures for obj in future.result()]
    predictions = io(summarise_predictions)(rt, objects)
    io(record_household_visits)(rt, ingestion_id, validation, objects)
    lap("transform_write")
    docs = io(publish_data_docs)(rt, ingestion_id, validation.docs_dir)
    lap("data_docs")
    # 6. Report → catalog and artifact
    reasons: dict[str, int] = {}
    if validation.quarantined_count:
        reasons = dict(
            validation.reasons.select(pl.col(REASONS).list.eval(pl.element().struct.field("rule").unique()))
            .explode(REASONS)[REASONS]
            .value_counts()
            .iter_rows()
        )
    round_rows = validation.rows.select(ROUND_COLUMN, HELD)
    batch = dict(validation.batch_checks)
    batch["completeness"] = {
        "passed": completeness >= rt.settings.completeness_threshold,
        "observed": round(completeness, 4),
    }
    report = _base_report(
        ingestion,
        started,
        status="completed_with_quarantine" if validation.quarantined_count else "completed",
        format=file_format,
        rows_received=received,
        rows_accepted=validation.accepted_count,
        rows_quarantined=validation.quarantined_count,
        rows_duplicate=deduplicated.duplicates,
        duplicates_within_file=deduplicated.within_batch,
        duplicates_of_earlier=deduplicated.earlier,
        fixes=dict(conformed.fixes),
        quarantine_reasons=dict(sorted(reasons.items())),
        rounds=round_counts(round_rows.filter(~pl.col(HELD))),
        rounds_quarantined=round_counts(round_rows.filter(pl.col(HELD))),
        declared_round=ingestion.survey_round,
        batch_checks=batch,
        completeness=round(completeness, 4),
        unknown_columns=conformed.unknown_columns,
        missing_columns=conformed.missing_columns,
        computed_columns=conformed.computed_columns,
        zones={o["zone"]: rt.store.uri(o["key"].rsplit("/", 1)[0]) for o in objects},
        data_docs=docs,
        warnings=[
            f"batch check {k} failed (observed {v['observed']})" for k, v in batch.items() if not v["passed"]
        ],
        predictions=predictions,
        timings=laps,
    )
    report.check_balance()
    io(record_report)(rt, report, validation, objects)
    # The visits count once the ingestion is complete (a failed run leaves them pending, a rerun redoes them)
    io(finalise_visits)(rt, ingestion_id)
    # 7. Monitoring: drift against the champion's training snapshot, quality thresholds, alert mail
    _monitor(rt, io, ingestion_id, validation, watched=champion is not None)
    logger.info(
        "ingestion %s: %s rows received, %s accepted, %s quarantined, %s duplicate",
        ingestion_id,
        report.rows_received,
        report.rows_accepted,
        report.rows_quarantined,
        report.rows_duplicate,
    )
    return _publish(report)


@flow(
    name="ingest",
    on_failure=[_mark_failed, alert_failure],
    on_crashed=[_mark_failed, alert_failure],
    log_prints=False,
)
def ingest(ingestion_id: str) -> dict[str, Any]:
    """Process one landed file end to end and return its import report."""
    return run_ingest(runtime_for(Settings()), ingestion_id)


class SweepSummary(TypedDict):
    """The ingestions one `ingest-landed` run processed, oldest first."""

    processed: list[str]


@io_task
def waiting_ingestions(rt: Runtime, limit: int, include_queued: bool) -> list[str]:
    """Landed ingestions, oldest first: those no run was queued for, or (catching up) all of them."""
    landed = rt.catalog.list_ingestions(limit=100_000, status="landed")
    return [i.id for i in reversed(landed) if include_queued or not i.flow_run_id][:limit]


@flow(name="ingest-landed", on_failure=[alert_failure], on_crashed=[alert_failure], log_prints=False)
def ingest_landed(limit: int = 1000, include_queued: bool = False) -> SweepSummary:
    """Process landed ingestions nobody queued a run for (the API's single surveys), oldest first.

    `include_queued` also takes those whose queued run never started (the weekly catch-up).
    """
    rt = runtime_for(Settings())
    processed = [
        ingest(ingestion_id)["ingestion_id"] for ingestion_id in waiting_ingestions(rt, limit, include_queued)
    ]
    return {"processed": processed}
