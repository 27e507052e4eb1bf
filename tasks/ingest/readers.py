"""Turn the bytes of an uploaded survey file into a polars DataFrame; the format is sniffed from the bytes."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat

import fastexcel
import numpy as np
import polars as pl

from tasks.platform.errors import BadInput

ScoreHeader = Callable[[list[str]], int]
_HEAD = 64 * 1024
_SEPARATORS = (",", ";", "\t")  # order breaks ties: comma first
_NOT_TABLE = "not a text table, spreadsheet, JSON or Parquet file"
_HEADER_ONLY = "the file has a header but no data rows"
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BOMB_RATIO, _BOMB_MIN_BYTES = 100, 1024**2


class RejectedFile(BadInput):
    """The file cannot be read as a survey table; `str(exc)` is a one-line reason a data clerk understands."""


@dataclass(frozen=True)
class ReadCaps:
    """Limits that stop a hostile or broken upload before it costs memory or time."""

    max_bytes: int = 512 * 1024**2
    max_decompressed_bytes: int = 1024**3
    max_rows: int = 2_000_000
    max_line_bytes: int = 1024**2
    max_json_depth: int = 32


DEFAULT_CAPS = ReadCaps()


@dataclass
class ReadResult:
    """A table read from an upload, with how it was read.

    A large CSV is read piece by piece: `frame` holds the first piece and `rest` parses the others on
    demand, so only one piece of text is in memory at a time. `frames()` yields them all, once.
    """

    frame: pl.DataFrame
    format: str
    details: dict[str, str]
    typed: bool
    rest: Iterator[pl.DataFrame] | None = None

    def frames(self) -> Iterator[pl.DataFrame]:
        """Every piece of the table in order (single use when the table is read in pieces)."""
        yield self.frame
        if self.rest is not None:
            yield from self.rest


def dedupe_headers(headers: list[str]) -> list[str]:
    """Rename repeated headers as pandas `read_csv` does: the second "X" becomes "X.1", the third "X.2"."""
    names = list(headers)
    counts: dict[str, int] = {}
    for i, name in enumerate(names):
        base, seen = name, counts.get(name, 0)
        while seen:  # like pandas, skip a suffix that any header (earlier or later) already uses
            counts[base] = seen + 1
            name = f"{base}.{seen}"
            seen = seen + 1 if name in names else counts.get(name, 0)
        names[i] = name
        counts[name] = seen + 1
    return names


def _names(headers: list[str]) -> list[str]:
    """Header texts as found, empty ones named `column_<n>`, repeats de-duplicated."""
    return dedupe_headers([h if h != "" else f"column_{i}" for i, h in enumerate(headers, 1)])


def _encoding(head: bytes) -> str:
    """Codec name for text starting with `head`; RejectedFile when it is not text."""
    for bom, name in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if head.startswith(bom):
            return name
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > len(head) * 0.2 and even <= len(head) // 200:  # BOM-less UTF-16: ASCII high bytes are NUL
        return "utf-16-le"
    if even > len(head) * 0.2 and odd <= len(head) // 200:
        return "utf-16-be"
    if 0 in head:
        raise RejectedFile(_NOT_TABLE)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def sniff_format(head: bytes) -> str:
    """ "csv", "xlsx", "json", "jsonl" or "parquet" from the first bytes; RejectedFile for anything else."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "xlsx"
    if head.startswith(b"PAR1"):
        return "parquet"
    text = codecs.getincrementaldecoder(_encoding(head))(errors="replace").decode(head)
    if len(_CONTROL.findall(text)) > 1 + len(text) // 100:  # one stray byte is a typo; more is not text
        raise RejectedFile(_NOT_TABLE)
    text = text.lstrip()
    if not text:
        raise RejectedFile("the file contains only blank space" if head else "the file is empty")
    if text[0] == "[":
        return "json"
    if text[0] == "{":
        first, newline, _ = text.partition("\n")
        return "jsonl" if not newline or first.rstrip().endswith("}") else "json"
    return "csv"


def _to_utf8(data: bytes) -> tuple[bytes, str]:
    """The text of `data` as UTF-8 bytes (BOM removed) and the encoding it was found in."""
    encoding = _encoding(data[:_HEAD])
    if encoding == "utf-8":
        if 0 in data:
            raise RejectedFile(_NOT_TABLE)
        if data.isascii():
            return data, encoding
        try:
            data.decode("utf-8")
            return data, encoding
        except UnicodeDecodeError:
            encoding = "cp1252"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        if encoding != "cp1252":
            raise RejectedFile(f"the file starts like {encoding} text but is not valid {encoding}") from None
        text, encoding = data.decode("latin-1"), "latin-1"
    return text.encode("utf-8"), encoding


def _check_lines(raw: bytes, cap: int) -> None:
    """RejectedFile when any line is longer than `cap` bytes; checked before any parser sees the text."""
    start = 0
    while len(raw) - start > cap:  # jump to the last newline within reach: ~size/cap probes, not one per line
        newline = raw.rfind(b"\n", start, start + cap + 1)
        if newline < 0:
            end = raw.find(b"\n", start)
            size = (len(raw) if end < 0 else end) - start
            line = raw.count(b"\n", 0, start) + 1
            raise RejectedFile(f"line {line:,} is {size:,} bytes; the limit is {cap:,}")
        start = newline + 1


def _too_many_rows(caps: ReadCaps) -> RejectedFile:
    return RejectedFile(f"the file has more than {caps.max_rows:,} data rows, the limit")


def _split(line: bytes, sep: str) -> list[str]:
    """Fields of one physical CSV line; a lone CR is data, as polars reads it (the text holds no NUL)."""
    text = line.decode().removesuffix("\r").replace("\r", "\0")
    return [f.replace("\0", "\r") for f in next(csv.reader([text], delimiter=sep), [])]


def _read_csv(
    data: bytes, caps: ReadCaps, _score: ScoreHeader | None, piece_bytes: int | None = None
) -> ReadResult:
    """All-String frame from delimited text; ragged rows are kept and described in `_row_defect`."""
    raw, encoding = _to_utf8(data)
    _check_lines(raw, caps.max_line_bytes)
    csv.field_size_limit(max(csv.field_size_limit(), caps.max_bytes))  # a quoted cell may span many lines
    end = raw.find(b"\n")
    header = raw if end < 0 else raw[:end]
    sep = max(_SEPARATORS, key=lambda s: len(_split(header, s)))
    details = {"encoding": encoding, "delimiter": sep}
    pieces = _pieces(raw, end + 1, piece_bytes) if piece_bytes and end >= 0 else []
    if len(pieces) > 1:
        first = _read_piece(raw, header, pieces[0], sep, caps)
        return ReadResult(
            first,
            "csv",
            details,
            typed=False,
            rest=_read_pieces(raw, header, pieces[1:], sep, caps, first.height),
        )
    frame = _csv_fast(raw, header, sep)
    if frame is None:
        frame = _csv_slow(raw, sep, caps)
    if frame.height > caps.max_rows:
        raise _too_many_rows(caps)
    return ReadResult(frame, "csv", details, typed=False)


def _pieces(raw: bytes, start: int, size: int) -> list[tuple[int, int]]:
    """Byte ranges of the body about `size` long, cut only at line ends outside quoted cells."""
    cuts, quotes, counted = [start], 0, start
    while len(raw) - cuts[-1] > size:
        newline = raw.find(b"\n", cuts[-1] + size)
        while newline >= 0:
            quotes += raw.count(b'"', counted, newline)
            counted = newline
            if quotes % 2 == 0:  # an even number of quotes so far: this line end is not inside a cell
                break
            newline = raw.find(b"\n", newline + 1)
        if newline < 0:
            break
        cuts.append(newline + 1)
    return list(zip(cuts, [*cuts[1:], len(raw)], strict=True))


def _read_piece(raw: bytes, header: bytes, span: tuple[int, int], sep: str, caps: ReadCaps) -> pl.DataFrame:
    text = header + b"\n" + raw[span[0] : span[1]]
    frame = _csv_fast(text, header, sep)
    return frame if frame is not None else _csv_slow(text, sep, caps)


def _read_pieces(
    raw: bytes, header: bytes, spans: list[tuple[int, int]], sep: str, caps: ReadCaps, rows: int
) -> Iterator[pl.DataFrame]:
    for span in spans:
        try:
            frame = _read_piece(raw, header, span, sep, caps)
        except RejectedFile:
            raise
        except Exception:  # noqa: BLE001 - parser messages may quote cells; say what is wrong instead
            raise RejectedFile("the CSV file is damaged or not laid out as a table") from None
        rows += frame.height
        if rows > caps.max_rows:
            raise _too_many_rows(caps)
        yield frame


def _polars_csv(
    raw: bytes, names: list[str], sep: str, *, truncate_ragged_lines: bool = False
) -> pl.DataFrame:
    """All-String polars read of `raw` under the given header names."""
    # null_values: a quoted empty cell is missing too, not ""
    return pl.read_csv(
        raw,
        has_header=True,
        new_columns=names,
        separator=sep,
        infer_schema=False,
        null_values="",
        truncate_ragged_lines=truncate_ragged_lines,
    )


def _csv_fast(raw: bytes, header: bytes, sep: str) -> pl.DataFrame | None:
    """Polars read, with ragged rows found cheaply; None when polars cannot read the text at all."""
    names = _names(_split(header, sep))
    n, lines = len(names), raw.count(b"\n") - raw.endswith(b"\n")
    if raw[raw.rfind(b"\n", 0, len(raw) - 1) + 1 :].count(b'"') % 2:  # cut off inside a quoted cell
        return None
    try:
        frame = _polars_csv(raw, names, sep)
        if frame.height == lines:  # one record per line, and polars pads a short row with nulls
            suspects = np.flatnonzero(frame.get_column(names[-1]).is_null().to_numpy())
            body = raw.split(b"\n")[1:] if suspects.size else []
            return _flag_ragged(frame, {int(i): len(_split(body[i], sep)) for i in suspects}, n)
    except pl.exceptions.PolarsError:
        pass
    try:  # a row has too many fields, or records span lines
        frame = _polars_csv(raw, names, sep, truncate_ragged_lines=True)
    except pl.exceptions.PolarsError:
        return None
    if frame.height == lines:  # one record per line: count separators; split only lines with quotes
        body = raw.split(b"\n")[1 : lines + 1]
        seps = np.fromiter(map(bytes.count, body, repeat(sep.encode())), np.int64, lines)
        quoted = np.fromiter(map(bytes.__contains__, body, repeat(b'"')), bool, lines)
        suspects = np.flatnonzero((seps != n - 1) | quoted)
        return _flag_ragged(frame, {int(i): len(_split(body[i], sep)) for i in suspects}, n)
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="")
    fields = [len(row) for row in csv.reader(text, delimiter=sep)][1:]
    if frame.height != len(fields):
        return None
    return _flag_ragged(frame, {i: k for i, k in enumerate(fields) if k != n}, n)


def _flag_ragged(frame: pl.DataFrame, fields: dict[int, int], n: int) -> pl.DataFrame:
    """Add `_row_defect` for rows whose field count (by row index) is not `n`; drop blank lines (0 fields)."""
    defects = {i: f"{k} fields, header has {n}" for i, k in fields.items() if k not in (0, n)}
    if defects:
        column: list[str | None] = [None] * frame.height
        for i, message in defects.items():
            column[i] = message
        frame = frame.with_columns(pl.Series("_row_defect", column, dtype=pl.String))
    blank = [i for i, k in fields.items() if k == 0]
    return frame.filter(pl.Series(~np.isin(np.arange(frame.height), blank))) if blank else frame


def _csv_slow(raw: bytes, sep: str, caps: ReadCaps) -> pl.DataFrame:
    """Row-by-row read with Python's csv module, for line breaks inside quotes and unclosed quotes."""
    rows = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=sep)
    names = _names(next(rows, []))
    n = len(names)
    cells: list[list[str | None]] = []
    defects: list[str | None] = []
    for row in rows:
        if not row:
            continue
        if len(cells) == caps.max_rows:
            raise _too_many_rows(caps)
        defects.append(None if len(row) == n else f"{len(row)} fields, header has {n}")
        cells.append([v or None for v in row[:n]] + [None] * (n - len(row)))
    if defects and raw.count(b'"') % 2:
        defects[-1] = defects[-1] or "the row ends inside an unclosed quote"
    frame = pl.DataFrame(cells, schema=dict.fromkeys(names, pl.String), orient="row")
    if any(defects):
        frame = frame.with_columns(pl.Series("_row_defect", defects, dtype=pl.String))
    return frame


def _check_zip(data: bytes, caps: ReadCaps) -> None:
    """RejectedFile unless `data` is an xlsx whose zip directory promises a sane unpacked size."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise RejectedFile("the file looks like a zip archive but is damaged") from None
    if not any(m.filename == "xl/workbook.xml" for m in members):
        raise RejectedFile("the file is a zip archive but not an Excel workbook (.xlsx)")
    total = sum(m.file_size for m in members)
    if total > caps.max_decompressed_bytes:
        raise RejectedFile(
            f"the workbook unpacks to {total:,} bytes; the limit is {caps.max_decompressed_bytes:,}"
        )
    ratio = max(
        (m.file_size / max(m.compress_size, 1) for m in members if m.file_size > _BOMB_MIN_BYTES), default=0
    )
    if ratio > _BOMB_RATIO:
        raise RejectedFile(f"the workbook is compressed {ratio:,.0f} to 1, which looks like a zip bomb")


def _cell_text(value: object) -> str:
    """A header cell as text: 2024.0 reads as "2024", an empty cell as ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(data: bytes, caps: ReadCaps, score_header: ScoreHeader | None) -> ReadResult:
    """Typed frame from the sheet whose first row looks most like the survey header."""
    _check_zip(data, caps)
    reader = fastexcel.read_excel(data)
    best: tuple[int, str, list[str]] | None = None
    for sheet in reader.sheet_names:
        first = reader.load_sheet(sheet, header_row=None, n_rows=1).to_polars().rows()
        if first and any(v is not None for v in first[0]):
            names = _names([_cell_text(v) for v in first[0]])
            score = score_header(names) if score_header else len(names)
            if best is None or score > best[0]:
                best = (score, sheet, names)
    if best is None:
        raise RejectedFile("the workbook has no sheet with a header row")
    _, sheet, names = best
    n_rows = caps.max_rows + 1
    batch, errors = reader.load_sheet(
        sheet, header_row=0, n_rows=n_rows, schema_sample_rows=None
    ).to_arrow_with_errors()
    if (
        errors and errors.errors
    ):  # a column mixing numbers and text would lose its text cells: read it as text
        text: fastexcel.DTypeMap = {e.position[1]: "string" for e in errors.errors}
        batch = reader.load_sheet(
            sheet, dtypes=text, header_row=0, n_rows=n_rows, schema_sample_rows=None
        ).to_arrow()
    frame = pl.DataFrame(batch)
    if frame.height > caps.max_rows:
        raise _too_many_rows(caps)
    frame.columns = names
    return ReadResult(frame, "xlsx", {"sheet": sheet}, typed=True)


def _json_depth(raw: bytes) -> int:
    """Deepest bracket nesting of JSON text, found without a recursive parser."""
    buf = np.frombuffer(_JSON_STRING.sub(b'""', raw), np.uint8)
    opens = (buf == ord("[")) | (buf == ord("{"))
    marks = np.flatnonzero(opens | (buf == ord("]")) | (buf == ord("}")))
    return int(np.cumsum(np.where(opens[marks], 1, -1)).max(initial=0))


def _json_value(raw: bytes, line: int = 0) -> object:
    """Parsed JSON text; RejectedFile naming the place (never the content) when it is not valid."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"line {line or exc.lineno}, column {exc.colno}"
        raise RejectedFile(f"the JSON is not valid ({where})") from None


def _column(values: list[object]) -> pl.Series:
    """One JSON field as a Series: nested values as JSON text, mixed types as String."""
    values = [json.dumps(v) if isinstance(v, dict | list) else v for v in values]
    kinds = {type(v) for v in values if v is not None}
    if kinds == {int, float}:
        values = [
            float(v) if isinstance(v, int | float) else None for v in values
        ]  # only ints, floats, None here
    elif len(kinds) > 1 or not kinds:
        values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        return pl.Series(values, dtype=pl.String)
    return pl.Series(values)


def _read_json(data: bytes, caps: ReadCaps, _score: ScoreHeader | None, lines: bool = False) -> ReadResult:
    """Typed frame from a JSON array of records, or from JSON lines when `lines`."""
    raw, encoding = _to_utf8(data)
    depth = _json_depth(raw)
    if depth > caps.max_json_depth:
        raise RejectedFile(f"the JSON is nested {depth:,} levels deep; the limit is {caps.max_json_depth}")
    records: object
    if lines:
        _check_lines(raw, caps.max_line_bytes)
        records = [_json_value(s, i) for i, s in enumerate(raw.split(b"\n"), 1) if s.strip()]
    else:
        records = _json_value(raw)
    if isinstance(records, dict):
        raise RejectedFile("the JSON file holds a single object, not a list of records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RejectedFile("the JSON file must be a list of records (objects)")
    if not records:
        raise RejectedFile("the JSON file has no records")
    if len(records) > caps.max_rows:
        raise _too_many_rows(caps)
    keys = list(dict.fromkeys(k for r in records for k in r))
    columns = {name: _column([r.get(k) for r in records]) for name, k in zip(_names(keys), keys, strict=True)}
    return ReadResult(pl.DataFrame(columns), "jsonl" if lines else "json", {"encoding": encoding}, typed=True)


def _read_parquet(data: bytes, caps: ReadCaps, _score: ScoreHeader | None) -> ReadResult:
    """Typed frame from Parquet; the row count is checked from metadata first; nested values become JSON text."""
    if pl.scan_parquet(io.BytesIO(data)).select(pl.len()).collect().item() > caps.max_rows:
        raise _too_many_rows(caps)
    frame = pl.read_parquet(io.BytesIO(data))
    for name, dtype in frame.schema.items():
        if dtype.is_nested():
            texts = [None if v is None else json.dumps(v, default=str) for v in frame[name].to_list()]
            frame = frame.with_columns(pl.Series(name, texts, dtype=pl.String))
    frame.columns = _names(frame.columns)
    return ReadResult(frame, "parquet", {}, typed=True)


_READERS: dict[str, Callable[[bytes, ReadCaps, ScoreHeader | None], ReadResult]] = {
    "csv": _read_csv,  # read_table passes piece_bytes itself
    "xlsx": _read_xlsx,
    "json": _read_json,
    "jsonl": lambda data, caps, score: _read_json(data, caps, score, lines=True),
    "parquet": _read_parquet,
}


def read_table(
    data: bytes,
    caps: ReadCaps = DEFAULT_CAPS,
    score_header: ScoreHeader | None = None,
    *,
    piece_bytes: int | None = None,
) -> ReadResult:
    """Read an upload of any supported format; RejectedFile with a one-line reason for anything unreadable.

    With `piece_bytes`, a CSV larger than that is read in pieces of about that size (see ReadResult).
    """
    if not data:
        raise RejectedFile("the file is empty")
    if len(data) > caps.max_bytes:
        raise RejectedFile(f"the file is {len(data):,} bytes; the limit is {caps.max_bytes:,}")
    fmt = sniff_format(data[:_HEAD])
    try:
        result = (
            _read_csv(data, caps, score_header, piece_bytes)
            if fmt == "csv"
            else _READERS[fmt](data, caps, score_header)
        )
    except RejectedFile:
        raise
    except BaseException as exc:  # pyo3 panics derive from BaseException; parser messages may quote cells
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise RejectedFile(f"the {fmt.upper()} file is damaged or not laid out as a table") from None
    if result.frame.height == 0:
        raise RejectedFile(_HEADER_ONLY)
    return result
