"""Ingest flow: one landed file → validated, quarantine, processed zones, catalog and an import report."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from tasks import rules as rule_tables
from tasks.catalog import Ingestion
from tasks.conform import Conformed, NotASurveyTable, conform, score_header
from tasks.features import add_features
from tasks.identity import Deduplicated, add_identity, drop_duplicates, protect_identifiers
from tasks.landing import read_raw
from tasks.readers import ReadResult, RejectedFile, read_table
from tasks.report import ImportReport, utc_iso
from tasks.retry import cpu_task, io_task, with_retry_policy
from tasks.runtime import Runtime, runtime_for
from tasks.settings import Settings
from tasks.validate import REASONS, Validation, validate
from tasks.zones import (
    PROCESSED_COLUMNS,
    QUARANTINE_COLUMNS,
    VALIDATED_COLUMNS,
    part_key,
    report_key,
    shape,
    write_parquet,
)

# ---- steps (thin task wrappers around plain functions) -----------------------------------------------


@io_task
def start_ingestion(rt: Runtime, ingestion_id: str) -> Ingestion:
    """Mark the ingestion running; fail clearly if it was never landed."""
    ingestion = rt.catalog.get(ingestion_id)
    if ingestion is None:
        raise LookupError(f"no landed ingestion {ingestion_id!r}")
    rt.catalog.start(ingestion_id, str(flow_run.get_id() or "") or None)
    return ingestion


@io_task
def fetch_raw(rt: Runtime, ingestion: Ingestion) -> bytes:
    """Decrypted bytes of the landed file."""
    return read_raw(rt, ingestion)


@dataclass(frozen=True)
class Rejected:
    """The file cannot be read as a survey table; `reason` is one line for the data clerk."""

    reason: str


@cpu_task
def read_and_conform(rt: Runtime, data: bytes) -> tuple[ReadResult, Conformed] | Rejected:
    """Sniff and read the table, then conform it to the contract; bad input is an outcome, not an error."""
    try:
        table = read_table(data, rt.caps, score_header=score_header)
        return table, conform(table.frame, typed=table.typed)
    except (RejectedFile, NotASurveyTable) as bad:
        return Rejected(str(bad))


@io_task
def identify_rows(rt: Runtime, ingestion_id: str, conformed: Conformed) -> Deduplicated:
    """Identify rows, drop duplicates against this batch and the catalog, then encrypt identifiers."""
    identified = add_identity(conformed.frame, rt.keyring)
    deduplicated = drop_duplicates(identified, lambda rows: rt.catalog.claim_identities(ingestion_id, rows))
    deduplicated.frame = protect_identifiers(deduplicated.frame, rt.keyring)
    return deduplicated


@cpu_task
def validate_rows(rt: Runtime, frame: pl.DataFrame) -> Validation:
    """Run the GX suite and the row masks; every row gets an outcome."""
    s = rt.settings
    rules = rule_tables.build_rules(max_rows=s.max_rows, completeness_threshold=s.completeness_threshold,
                                    distribution_min_rows=s.distribution_min_rows)
    return validate(frame, rules)


@io_task
def write_partition(rt: Runtime, ingestion_id: str, part: int, accepted: pl.DataFrame,
                    quarantined: pl.DataFrame) -> list[dict[str, Any]]:
    """Write one partition to the validated, quarantine and processed zones (skipping parts already written)."""
    outputs = {
        "validated": shape(accepted, VALIDATED_COLUMNS, ingestion_id),
        "quarantine": shape(quarantined, QUARANTINE_COLUMNS, ingestion_id),
        "processed": shape(add_features(accepted), PROCESSED_COLUMNS, ingestion_id),
    }
    written = []
    for zone, frame in outputs.items():
        if frame.height == 0:
            continue
        key = part_key(zone, ingestion_id, part)
        if rt.store.exists(key):  # a re-run: the object is complete (writes are atomic) and rows are identical
            size = rt.store.size(key)
        else:
            size = write_parquet(rt.store, key, frame)
        written.append({"zone": zone, "key": key, "rows": frame.height, "size_bytes": size})
    return written


@io_task
def publish_data_docs(rt: Runtime, ingestion_id: str, docs_dir: Path | None) -> str | None:
    """Copy the GX Data Docs site into the reports zone; returns the index location."""
    if docs_dir is None:
        return None
    for path in sorted(docs_dir.rglob("*")):
        if path.is_file():
            rt.store.put_file(report_key(ingestion_id, f"data_docs/{path.relative_to(docs_dir).as_posix()}"), path,
                              overwrite=True)
    shutil.rmtree(docs_dir, ignore_errors=True)
    return rt.store.uri(report_key(ingestion_id, "data_docs/index.html"))


@io_task
def record_report(rt: Runtime, report: ImportReport, validation: Validation | None,
                  objects: list[dict[str, Any]]) -> None:
    """Store the report in the reports zone and the catalog (status, counts, rules, metrics, lineage)."""
    rt.store.put(report_key(report.ingestion_id), report.model_dump_json(indent=2).encode(), overwrite=True)
    metrics = {"completeness": report.completeness or 0.0, "rows_received": report.rows_received,
               "rows_accepted": report.rows_accepted, "rows_quarantined": report.rows_quarantined,
               "rows_duplicate": report.rows_duplicate}
    if report.pass_rate is not None:
        metrics["pass_rate"] = report.pass_rate
    metrics.update({f"check.{k}": float(v["observed"]) for k, v in report.batch_checks.items()
                    if isinstance(v.get("observed"), int | float)})
    rt.catalog.record_result(report.ingestion_id, status=report.status, report=report.model_dump(mode="json"),
                             rule_outcomes=validation.outcomes if validation else [], metrics=metrics,
                             objects=objects)


# ---- flow ----------------------------------------------------------------------------------------------


def _mark_failed(flow_obj: Any, run: Any, state: Any) -> None:
    """on_failure hook: the catalog says `failed` with the one-line reason, so `rtv rerun` can pick it up."""
    ingestion_id = run.parameters.get("ingestion_id")
    if ingestion_id:
        runtime_for(Settings()).catalog.fail(ingestion_id, "failed", (state.message or "flow failed").splitlines()[0])


def _base_report(ingestion: Ingestion, started: float, **fields: Any) -> ImportReport:
    return ImportReport(ingestion_id=ingestion.id, source=ingestion.source, door=ingestion.door,
                        sha256=ingestion.sha256, size_bytes=ingestion.size_bytes,
                        received_at=utc_iso(ingestion.received_at),
                        finished_at=datetime.now(UTC).isoformat(), duration_s=round(time.monotonic() - started, 2),
                        **fields)


def _publish(report: ImportReport) -> dict[str, Any]:
    create_markdown_artifact(report.to_markdown(), key=f"import-report-{report.ingestion_id}",
                             description=f"Import report {report.ingestion_id}")
    return report.model_dump(mode="json")


def run_ingest(rt: Runtime, ingestion_id: str) -> dict[str, Any]:
    """The ingest steps, in order; returns the import report as a dict."""
    logger = get_run_logger()
    started = time.monotonic()
    io = {step: with_retry_policy(step, rt.settings) for step in
          (start_ingestion, fetch_raw, identify_rows, write_partition, publish_data_docs, record_report)}

    # 1. Land → running; read the raw bytes back
    ingestion = io[start_ingestion](rt, ingestion_id)
    data = io[fetch_raw](rt, ingestion)
    # 2. Read (format sniffed from the bytes) and conform to the contract
    outcome = read_and_conform(rt, data)
    del data
    if isinstance(outcome, Rejected):
        report = _base_report(ingestion, started, status="rejected", reason=outcome.reason)
        io[record_report](rt, report, None, [])
        logger.warning("ingestion %s rejected: %s", ingestion_id, outcome.reason)
        return _publish(report)
    table, conformed = outcome
    # 3. Identity, duplicates, protection of identifiers
    completeness = rule_tables.completeness(conformed.frame)
    received = conformed.frame.height
    deduplicated = io[identify_rows](rt, ingestion_id, conformed)
    # 4. Validate with Great Expectations: accepted vs quarantined, with reasons
    validation = validate_rows(rt, deduplicated.frame)
    # 5. Transform and write the zones, partition by partition
    size = rt.settings.partition_rows
    parts = max(-(-validation.accepted.height // size), -(-validation.quarantined.height // size), 1)
    futures = [io[write_partition].submit(rt, ingestion_id, n, validation.accepted.slice(n * size, size),
                                          validation.quarantined.slice(n * size, size)) for n in range(parts)]
    objects = [obj for future in futures for obj in future.result()]
    docs = io[publish_data_docs](rt, ingestion_id, validation.docs_dir)
    # 6. Report → catalog and artifact
    reasons: dict[str, int] = {}
    if validation.quarantined.height:
        reasons = dict(validation.quarantined.select(pl.col(REASONS).list.eval(
            pl.element().struct.field("rule").unique())).explode(REASONS)[REASONS].value_counts().iter_rows())
    batch = dict(validation.batch_checks)
    batch["completeness"] = {"passed": completeness >= rt.settings.completeness_threshold,
                             "observed": round(completeness, 4)}
    report = _base_report(
        ingestion, started,
        status="completed_with_quarantine" if validation.quarantined.height else "completed",
        format=table.format, rows_received=received, rows_accepted=validation.accepted.height,
        rows_quarantined=validation.quarantined.height, rows_duplicate=deduplicated.duplicates,
        duplicates_within_file=deduplicated.within_batch, duplicates_of_earlier=deduplicated.earlier,
        fixes=dict(conformed.fixes), quarantine_reasons=dict(sorted(reasons.items())), batch_checks=batch,
        completeness=round(completeness, 4), unknown_columns=conformed.unknown_columns,
        missing_columns=conformed.missing_columns, computed_columns=conformed.computed_columns,
        zones={o["zone"]: rt.store.uri(o["key"].rsplit("/", 1)[0]) for o in objects}, data_docs=docs,
        warnings=[f"batch check {k} failed (observed {v['observed']})" for k, v in batch.items() if not v["passed"]],
    )
    report.check_balance()
    io[record_report](rt, report, validation, objects)
    logger.info("ingestion %s: %s rows received, %s accepted, %s quarantined, %s duplicate", ingestion_id,
                report.rows_received, report.rows_accepted, report.rows_quarantined, report.rows_duplicate)
    return _publish(report)


@flow(name="ingest", on_failure=[_mark_failed], on_crashed=[_mark_failed], log_prints=False)
def ingest(ingestion_id: str) -> dict[str, Any]:
    """Process one landed file end to end and return its import report."""
    return run_ingest(runtime_for(Settings()), ingestion_id)
