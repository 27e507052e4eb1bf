"""Household exports (CSV and Excel): one row per household, PII masked by role, formulas neutralised, audited."""

from __future__ import annotations

import io

import polars as pl

from dashboard.labels import label
from dashboard.rows import household_ids, pseudonyms
from tasks.protection import audit
from tasks.protection.users import sees_pii
from tasks.runtime import Runtime

FORMULA_PATTERN = r"^[=+\-@\t\r]"  # what a spreadsheet may read as the start of a formula
EXPORT_COLUMNS = (
    "household",
    "household_ref",
    "district",
    "cluster",
    "village",
    "survey_round",
    "collected_at",
    "visits",
    "p_vulnerable",
    "risk_band",
    "predicted_status",
    "observed_status",
    "expected_per_day",
    "model_version",
    "ingestion_id",
    "source_row",
)
EXCEL_MAX_ROWS = 1_000_000  # a sheet holds 1,048,576 rows


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells that start like a formula (`=`, `+`, `-`, `@`, tab, CR) with `'` so they stay text.

    Only text columns change; numbers (including negative ones) stay numbers.
    """
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        [
            pl.when(pl.col(c).str.contains(FORMULA_PATTERN))
            .then(pl.lit("'") + pl.col(c))
            .otherwise(pl.col(c))
            .alias(c)
            for c in text
        ]
    )


def to_csv(frame: pl.DataFrame) -> bytes:
    """UTF-8 CSV with a BOM, so Excel opens accents and Luganda names correctly."""
    return b"\xef\xbb\xbf" + neutralise(frame).write_csv().encode()


def to_excel(frame: pl.DataFrame) -> bytes:
    """One worksheet; xlsxwriter told never to turn text into formulas or links."""
    import xlsxwriter

    if frame.height > EXCEL_MAX_ROWS:
        raise ValueError(
            f"{frame.height:,} rows do not fit in one Excel sheet; narrow the filters or use CSV"
        )
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(
        buffer, {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    ) as workbook:
        neutralise(frame).write_excel(workbook, worksheet="households", autofit=frame.height <= 10_000)
    return buffer.getvalue()


def export_frame(rt: Runtime, households: pl.DataFrame, role: str) -> pl.DataFrame:
    """The export columns, with the household id as the role may see it (decrypted or masked) and its reference.

    `households` holds one row per household (its latest visit, as `household_views.households` lists them);
    the visit's collection time is exported as its date.
    """
    if households.height == 0:
        return pl.DataFrame({label(c): [] for c in EXPORT_COLUMNS})
    reveal = sees_pii(role, rt.settings.env)
    frame = households.with_columns(
        pl.Series("household", household_ids(rt, households, reveal=reveal), dtype=pl.String),
        pl.Series("household_ref", pseudonyms(households), dtype=pl.String),
    )
    if isinstance(frame.schema.get("collected_at"), pl.Datetime):
        frame = frame.with_columns(pl.col("collected_at").dt.date())
    return frame.select([c for c in EXPORT_COLUMNS if c in frame.columns]).rename(label)


def export(
    rt: Runtime,
    households: pl.DataFrame,
    fmt: str,
    *,
    actor: str,
    role: str,
    filters: dict[str, object] | None = None,
) -> bytes:
    """The bytes of a CSV or Excel export, recorded in the audit log (and as `decrypted` when ids are shown)."""
    frame = export_frame(rt, households, role)
    content = to_excel(frame) if fmt == "xlsx" else to_csv(frame)
    detail = {"format": fmt, "rows": frame.height, "filters": filters or {}}
    if sees_pii(role, rt.settings.env) and frame.height:
        audit.record(
            rt.catalog, actor, "decrypted", "households", {"rows": frame.height, "purpose": "export"}
        )
    audit.record(rt.catalog, actor, "exported", "households", detail)
    return content
