"""Conform a read table to the contract: canonical names and types, only unambiguous fixes, each one counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import polars as pl

from tasks.ingest import contract
from tasks.ingest.contract import BY_NAME, CANONICAL_NAMES, DERIVATIONS, METADATA_NAMES, Column

if TYPE_CHECKING:
    from polars.datatypes import DataTypeClass

NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none")
DEFECTS = "_defects"
DEFECTIVE = "_defective"
ROW = "_row"
ROW_DEFECT = "_row_defect"  # set by the CSV reader for rows whose field count differs from the header
GROUP_SEPARATORS = "/-:"  # KoboToolbox joins groups with "/", ODK Central with "-"
MAX_MISSING_SHARE = 0.5
VALUE_PREVIEW = 80
DEFECT_DTYPE = pl.List(pl.Struct({"column": pl.String, "value": pl.String}))
DEFECTS_SCHEMA: dict[str, DataTypeClass | pl.DataType] = {ROW: pl.Int64, DEFECTS: DEFECT_DTYPE}


class NotASurveyTable(ValueError):
    """Too few contract columns to be an RTV household survey."""


@dataclass
class Conformed:
    """The conformed frame and what conforming did to it."""

    frame: pl.DataFrame
    defects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=DEFECTS_SCHEMA))
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


@dataclass
class _Column:
    """How one contract column is computed from its source, what counts as a fix, and what is a defect."""

    value: pl.Expr
    fixes: dict[str, pl.Expr] = field(default_factory=dict)
    bad: pl.Expr | None = None


def _recase(cleaned: pl.Expr, spellings: list[str]) -> pl.Expr:
    canonical = {s.lower(): s for s in spellings}
    return cleaned.str.to_lowercase().replace_strict(canonical, default=cleaned)


def _text_column(col: Column, values: pl.Expr) -> _Column:
    raw = values.cast(pl.String)
    stripped = raw.str.strip_chars()
    cleaned = pl.when(stripped == "").then(None).otherwise(stripped)
    fixes = {"value_whitespace": raw != stripped}
    if col.name == "household_id":
        upper = cleaned.str.to_uppercase()
        return _Column(upper, fixes | {"household_id_case": cleaned != upper})
    spellings = (
        [str(c) for c in col.codes] if col.codes and all(isinstance(c, str) for c in col.codes) else None
    )
    if col.name == "cluster":
        spellings = [c for cs in contract.DISTRICT_CLUSTERS.values() for c in cs]
    if spellings:
        recased = _recase(cleaned, spellings)
        return _Column(recased, fixes | {"value_case": recased != cleaned})
    return _Column(cleaned, fixes)


def _number_column(
    col: Column, values: pl.Expr, source_dtype: pl.DataType, typed: bool, cast: pl.Expr | None = None
) -> _Column:
    """Parse a numeric column. With `cast` (rows whose numbers all cast as they stand), skip trimming and tokens."""
    target = col.polars_dtype
    fixes: dict[str, pl.Expr] = {}
    if cast is not None:
        number, present = cast, values.is_not_null()
    elif source_dtype.is_numeric() or source_dtype == pl.Boolean:
        number, present = values.cast(pl.Float64), values.is_not_null()
    else:
        text = values.cast(pl.String)
        stripped = text.str.strip_chars()
        missing = stripped.is_null() | stripped.is_in(NULL_TOKENS)
        number = pl.when(missing).then(None).otherwise(stripped).cast(pl.Float64, strict=False)
        present = ~missing
        fixes["value_whitespace"] = (text != stripped) & ~missing
    if (
        typed and source_dtype == pl.String
    ):  # a quoted number in a typed format (JSON "5", a text cell in Excel)
        fixes["number_as_text"] = number.is_not_null()
    bad = present & (number.is_null() | ~number.is_finite())
    if target == pl.Int64():
        bad = bad | (number.is_finite() & (number != number.round(0)))
    clean = pl.when(bad).then(None).otherwise(number)
    return _Column(clean.cast(target) if target == pl.Int64() else clean, fixes, bad)


def _defects(
    computed: pl.DataFrame, source: pl.DataFrame, bad_columns: dict[str, str], raw_headers: dict[str, str]
) -> pl.DataFrame:
    """Row number → the cells that could not be parsed (column, raw source text), for rows that have any.

    Built only for the few rows with a defect: assembling lists for every row costs minutes at 1M rows.
    """
    flags = [pl.col(flag) for flag in bad_columns.values()]
    hits = computed.filter(pl.any_horizontal(flags)).select(ROW, *bad_columns.values()) if flags else None
    entries: dict[int, list[dict[str, str | None]]] = {}
    if hits is not None and hits.height:
        raw = source.join(hits.select(ROW), on=ROW).select(
            ROW,
            *[pl.col(h).cast(pl.String).str.slice(0, VALUE_PREVIEW).alias(c) for c, h in raw_headers.items()],
        )
        rows = hits.join(raw, on=ROW)
        for column, flag in bad_columns.items():
            for row, value in rows.filter(pl.col(flag)).select(ROW, column).iter_rows():
                entries.setdefault(row, []).append({"column": column, "value": value})
    return pl.DataFrame({ROW: list(entries), DEFECTS: list(entries.values())}, schema=DEFECTS_SCHEMA)


def _cast_name(name: str) -> str:
    return f"_cast:{name}"


# output names, fix flag → fix kind, column → defect flag, column → raw header, expressions
_Plan: TypeAlias = tuple[list[str], dict[str, str], dict[str, str], dict[str, str], list[pl.Expr]]
_SchemaKey: TypeAlias = tuple[tuple[str, pl.DataType], ...]


def _plan(source: pl.DataFrame, by_name: dict[str, str], typed: bool, *, fast: bool) -> _Plan:
    """Expressions producing every contract column, the fix flags, and the defect flags with raw values."""
    values: list[pl.Expr] = [pl.col(ROW)]
    flags: list[pl.Expr] = []
    fix_kinds: dict[str, str] = {}
    bad_columns: dict[str, str] = {}
    raw_headers: dict[str, str] = {}
    for name in CANONICAL_NAMES + METADATA_NAMES:
        col = BY_NAME[name]
        header = by_name.get(name)
        if header is None:
            values.append(pl.lit(None, dtype=col.polars_dtype).alias(name))
            continue
        cast = pl.col(_cast_name(name)) if fast else None
        built = (
            _text_column(col, pl.col(header))
            if col.dtype in ("str", "datetime")
            else _number_column(col, pl.col(header), source.schema[header], typed, cast)
        )
        values.append(built.value.alias(name))
        for kind, expr in built.fixes.items():
            fix_kinds[f"_fix:{kind}:{name}"] = kind
            flags.append(expr.fill_null(False).alias(f"_fix:{kind}:{name}"))
        if built.bad is not None:
            bad_columns[name] = f"_bad:{name}"
            raw_headers[name] = header
            flags.append(built.bad.fill_null(False).alias(f"_bad:{name}"))
    if ROW_DEFECT in source.columns:
        bad_columns["row"] = "_bad:_row"
        raw_headers["row"] = ROW_DEFECT
        flags.append(pl.col(ROW_DEFECT).is_not_null().alias("_bad:_row"))
    names = [v.meta.output_name() for v in values]
    return names, fix_kinds, bad_columns, raw_headers, values + flags


def conform(
    table: pl.DataFrame | Iterable[pl.DataFrame], *, typed: bool, chunk_rows: int = 250_000
) -> Conformed:
    """Rename to canonical names, trim, fix case, parse numbers, fill derived totals; flag what cannot parse.

    Takes one frame or the pieces of one table (same columns) and works `chunk_rows` at a time: parsing
    needs a few times the memory of its input, so chunks keep a million-row file within a few GB.
    """
    pieces = iter([table] if isinstance(table, pl.DataFrame) else table)
    first = next(pieces)
    mapping, header_fixes, unknown = map_headers(first.columns)
    present = set(mapping.values())
    required = [c.name for c in contract.COLUMNS if contract.Role.DERIVED not in c.roles]
    missing_required = [n for n in required if n not in present]
    if len(missing_required) > MAX_MISSING_SHARE * len(required):
        examples = ", ".join(contract.source_name(n) for n in missing_required[:4])
        raise NotASurveyTable(
            f"not an RTV household survey table: {len(missing_required)} of {len(required)} expected columns are "
            f"missing (e.g. {examples})"
        )
    absent = {n for n in CANONICAL_NAMES if n not in present}
    result = Conformed(
        pl.DataFrame(),
        fixes=Counter(header_fixes),
        unknown_columns=unknown,
        missing_columns=[n for n in CANONICAL_NAMES if n not in present],
    )
    frames, defects, offset = [], [], 0
    by_name = {v: k for k, v in mapping.items()}
    plans: dict[_SchemaKey, tuple[_Plan, _Plan]] = {}
    for piece in chain([first], pieces):
        for start in range(0, piece.height, chunk_rows):
            part = _conform_chunk(piece.slice(start, chunk_rows), by_name, typed, offset, plans)
            offset += part.frame.height
            fill_derived(part, absent)
            frames.append(part.frame)
            defects.append(part.defects)
            result.fixes.update(part.fixes)
            result.computed_columns += [c for c in part.computed_columns if c not in result.computed_columns]
    if not frames:
        frames.append(_conform_chunk(first, by_name, typed, 0, plans).frame)
    result.frame = pl.concat(frames, rechunk=False)
    result.defects = pl.concat(defects)
    result.missing_columns = [n for n in result.missing_columns if n not in result.computed_columns]
    return result


def _conform_chunk(
    frame: pl.DataFrame,
    by_name: dict[str, str],
    typed: bool,
    offset: int,
    plans: dict[_SchemaKey, tuple[_Plan, _Plan]],
) -> Conformed:
    """Conform one slice of rows; `offset` keeps source row numbers global; `plans` caches expressions by schema."""
    numeric = {n: h for n, h in by_name.items() if BY_NAME[n].dtype not in ("str", "datetime")}
    source = frame.with_row_index(ROW, offset=offset + 1).with_columns(
        pl.col(ROW).cast(pl.Int64),
        *[pl.col(h).cast(pl.Float64, strict=False).alias(_cast_name(n)) for n, h in numeric.items()],
    )
    # Most rows cast cleanly as they stand; trimming and null tokens cost ~10x, so only messy rows pay for them.
    slow = source.select(
        pl.any_horizontal(
            pl.lit(False),
            *[pl.col(h).is_not_null() & pl.col(_cast_name(n)).is_null() for n, h in numeric.items()],
        )
    ).to_series()
    schema = tuple(source.schema.items())
    if schema not in plans:
        plans[schema] = (_plan(source, by_name, typed, fast=True), _plan(source, by_name, typed, fast=False))
    (names, fast_fixes, bad_columns, raw_headers, fast_exprs), (_, slow_fixes, _, _, slow_exprs) = plans[
        schema
    ]
    fix_kinds = fast_fixes | slow_fixes
    computed = source.lazy().select(fast_exprs).collect()
    fast_counts = (
        computed.select(list(fast_fixes)).filter(~slow).sum().row(0, named=True) if fast_fixes else {}
    )
    counts = Counter({column: int(n or 0) for column, n in fast_counts.items()})
    if slow.any():  # re-do the messy rows with trimming and null tokens, then put them back in place
        messy = source.filter(slow).lazy().select(slow_exprs).collect()
        counts.update(
            {c: int(n or 0) for c, n in messy.select(list(slow_fixes)).sum().row(0, named=True).items()}
        )
        positions = pl.Series(np.flatnonzero(slow.to_numpy()), dtype=pl.UInt32)
        computed = computed.with_columns(
            [computed[c].scatter(positions, messy[c]) for c in (*names, *bad_columns.values())]
        )
    del source
    fixes: Counter[str] = Counter()
    for column, count in counts.items():
        if count:
            fixes[fix_kinds[column]] += count
    defects = _defects(computed, frame.with_row_index(ROW, offset=offset + 1), bad_columns, raw_headers)
    flags = [pl.col(f) for f in bad_columns.values()]
    conformed = computed.select(*names, pl.any_horizontal(pl.lit(False), *flags).alias(DEFECTIVE))
    return Conformed(conformed, defects, fixes)


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
            frame = frame.with_columns(
                pl.when(to_fill).then(value).otherwise(target).alias(derivation.target)
            )
            kind = "derived_computed" if derivation.target in absent else "derived_filled"
            result.fixes[kind] += filled
            if derivation.target in absent:
                result.computed_columns.append(derivation.target)
    result.frame = frame
