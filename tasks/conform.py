"""Conform a read table to the contract: canonical names and types, only unambiguous fixes, each one counted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache

import polars as pl

from tasks import contract
from tasks.contract import BY_NAME, CANONICAL_NAMES, DERIVATIONS, METADATA_NAMES, Column

NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none")
DEFECTS = "_defects"
ROW = "_row"
ROW_DEFECT = "_row_defect"  # set by the CSV reader for rows whose field count differs from the header
GROUP_SEPARATORS = "/-:"  # KoboToolbox joins groups with "/", ODK Central with "-"
MAX_MISSING_SHARE = 0.5
VALUE_PREVIEW = 80
DEFECT_DTYPE = pl.List(pl.Struct({"column": pl.String, "value": pl.String}))


class NotASurveyTable(ValueError):
    """Too few contract columns to be an RTV household survey."""


@dataclass
class Conformed:
    """The conformed frame and what conforming did to it."""

    frame: pl.DataFrame
    fixes: Counter[str] = field(default_factory=Counter)
    unknown_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    computed_columns: list[str] = field(default_factory=list)


@cache
def _lower_aliases() -> dict[str, str]:
    return {k.lower(): v for k, v in contract.header_aliases().items()}


def resolve_header(header: str) -> tuple[str | None, str | None]:
    """Canonical name of a header and the fix it needed (None, "header_whitespace" or "header_case")."""
    aliases = contract.header_aliases()
    if header in aliases:
        return aliases[header], None
    stripped = header.strip()
    if stripped in aliases:
        return aliases[stripped], "header_whitespace"
    if stripped.lower() in _lower_aliases():
        return _lower_aliases()[stripped.lower()], "header_case"
    for i, char in enumerate(stripped):  # group-prefixed export headers: shortest prefix first
        if char in GROUP_SEPARATORS:
            suffix = stripped[i + 1 :]
            if suffix in aliases:
                return aliases[suffix], None
            if suffix.lower() in _lower_aliases():
                return _lower_aliases()[suffix.lower()], "header_case"
    return None, None


def score_header(headers: list[str]) -> int:
    """How many headers name a contract column (used to pick the survey sheet of a workbook)."""
    return sum(resolve_header(h)[0] is not None for h in headers)


def map_headers(headers: list[str]) -> tuple[dict[str, str], Counter[str], list[str]]:
    """source header → canonical name, the header fixes, and the headers that are not in the contract."""
    mapping: dict[str, str] = {}
    fixes: Counter[str] = Counter()
    unknown: list[str] = []
    taken: set[str] = set()
    for header in headers:
        if header in (ROW_DEFECT,):
            continue
        name, fix = resolve_header(header)
        if name in taken and name is not None:
            # Repeated source header without pandas' ".1": the second copy is the contract's ".1" column.
            second = contract.header_aliases().get(BY_NAME[name].source + ".1")
            name = second if second and second not in taken else None
        if name is None:
            unknown.append(header)
            continue
        mapping[header] = name
        taken.add(name)
        if fix:
            fixes[fix] += 1
    return mapping, fixes, unknown


def _defect_entry(column: str, raw: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(column).alias("column"), raw.str.slice(0, VALUE_PREVIEW).alias("value"))


def _conform_text(col: Column, values: pl.Expr, fixes_exprs: dict[str, pl.Expr]) -> pl.Expr:
    raw = values.cast(pl.String)
    stripped = raw.str.strip_chars()
    fixes_exprs[f"value_whitespace:{col.name}"] = (raw != stripped).sum()
    cleaned = pl.when(stripped == "").then(None).otherwise(stripped)
    if col.name == "household_id":
        fixes_exprs["household_id_case"] = (cleaned != cleaned.str.to_uppercase()).sum()
        return cleaned.str.to_uppercase()
    if col.codes and all(isinstance(c, str) for c in col.codes):
        canonical = {str(c).lower(): str(c) for c in col.codes}
        recased = cleaned.str.to_lowercase().replace_strict(canonical, default=cleaned)
        fixes_exprs[f"value_case:{col.name}"] = (recased != cleaned).sum()
        return recased
    if col.name == "cluster":
        canonical = {c.lower(): c for cs in contract.DISTRICT_CLUSTERS.values() for c in cs}
        recased = cleaned.str.to_lowercase().replace_strict(canonical, default=cleaned)
        fixes_exprs["value_case:cluster"] = (recased != cleaned).sum()
        return recased
    return cleaned


def _parse_number(col: Column, values: pl.Expr, source_dtype: pl.DataType, typed: bool,
                  fixes_exprs: dict[str, pl.Expr], defects: list[pl.Expr]) -> pl.Expr:
    target = col.polars_dtype
    if source_dtype.is_numeric() or source_dtype == pl.Boolean:
        number = values.cast(pl.Float64)
        raw_text = values.cast(pl.String)
    else:
        raw_text = values.cast(pl.String)
        stripped = raw_text.str.strip_chars()
        is_missing = stripped.is_null() | stripped.is_in(NULL_TOKENS)
        fixes_exprs[f"value_whitespace:{col.name}"] = ((raw_text != stripped) & ~is_missing).sum()
        number = pl.when(is_missing).then(None).otherwise(stripped).cast(pl.Float64, strict=False)
        if typed:  # a quoted number in a typed format (JSON "5", a text cell in Excel)
            fixes_exprs[f"number_as_text:{col.name}"] = (number.is_not_null()).sum()
        raw_text = pl.when(is_missing).then(None).otherwise(raw_text)
    bad = raw_text.is_not_null() & (number.is_null() | ~number.is_finite())
    if target == pl.Int64():
        bad = bad | (number.is_finite() & (number != number.round(0)))
    defects.append(pl.when(bad).then(_defect_entry(col.name, raw_text)).otherwise(None))
    clean = pl.when(bad).then(None).otherwise(number)
    return clean.cast(target) if target == pl.Int64() else clean


def conform(frame: pl.DataFrame, *, typed: bool) -> Conformed:
    """Rename to canonical names, trim, fix case, parse numbers, fill derived totals; flag what cannot parse."""
    mapping, header_fixes, unknown = map_headers(frame.columns)
    present = set(mapping.values())
    required = [c.name for c in contract.COLUMNS if contract.Role.DERIVED not in c.roles]
    missing_required = [n for n in required if n not in present]
    if len(missing_required) > MAX_MISSING_SHARE * len(required):
        examples = ", ".join(contract.source_name(n) for n in missing_required[:4])
        raise NotASurveyTable(
            f"not an RTV household survey table: {len(missing_required)} of {len(required)} expected columns are "
            f"missing (e.g. {examples})"
        )
    by_name = {name: header for header, name in mapping.items()}
    fix_exprs: dict[str, pl.Expr] = {}
    defects: list[pl.Expr] = []
    columns: list[pl.Expr] = [pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW)]
    for name in CANONICAL_NAMES + METADATA_NAMES:
        col = BY_NAME[name]
        header = by_name.get(name)
        if header is None:
            columns.append(pl.lit(None, dtype=col.polars_dtype).alias(name))
            continue
        values = pl.col(header)
        if col.dtype in ("str", "datetime"):
            columns.append(_conform_text(col, values, fix_exprs).alias(name))
        else:
            columns.append(_parse_number(col, values, frame.schema[header], typed, fix_exprs, defects).alias(name))
    if ROW_DEFECT in frame.columns:
        defects.append(pl.when(pl.col(ROW_DEFECT).is_not_null())
                       .then(_defect_entry("_row", pl.col(ROW_DEFECT))).otherwise(None))
    if defects:
        found = pl.concat_list(defects).list.drop_nulls()
        columns.append(pl.when(found.list.len() > 0).then(found).otherwise(None).alias(DEFECTS))
    else:
        columns.append(pl.lit(None, dtype=DEFECT_DTYPE).alias(DEFECTS))

    counts = frame.select(**fix_exprs).row(0, named=True) if fix_exprs else {}
    conformed = frame.select(columns)
    fixes: Counter[str] = Counter(header_fixes)
    for key, count in counts.items():
        if count:
            fixes[key.split(":")[0]] += int(count)
    result = Conformed(conformed, fixes, unknown, [n for n in CANONICAL_NAMES + METADATA_NAMES if n not in present])
    fill_derived(result, absent={n for n in CANONICAL_NAMES if n not in present})
    return result


def fill_derived(result: Conformed, absent: set[str]) -> None:
    """Compute derived columns that are absent, and fill null derived cells whose terms are all present."""
    frame = result.frame
    for derivation in DERIVATIONS:
        if not derivation.computable:
            continue
        terms = [pl.col(t) for t in derivation.term_names]
        value = pl.sum_horizontal([pl.col(t) * k for t, k in derivation.terms])
        computable = pl.all_horizontal([t.is_not_null() for t in terms])
        target = pl.col(derivation.target)
        to_fill = target.is_null() & computable
        filled = int(frame.select(to_fill.sum()).item())
        if filled:
            frame = frame.with_columns(pl.when(to_fill).then(value).otherwise(target).alias(derivation.target))
            kind = "derived_computed" if derivation.target in absent else "derived_filled"
            result.fixes[kind] += filled
            if derivation.target in absent:
                result.computed_columns.append(derivation.target)
    result.missing_columns = [n for n in result.missing_columns if n not in result.computed_columns]
    result.frame = frame
