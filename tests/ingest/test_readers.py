"""Readers: every upload format, ragged rows, caps and rejections, asserted on rows, names, values and reasons."""

from __future__ import annotations

import csv
import io
import json
import random
import time
import zipfile
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
import xlsxwriter

from tasks.ingest import readers
from tasks.ingest.readers import ReadCaps, RejectedFile, dedupe_headers, read_table, sniff_format

NULLS = {
    "organic_pesticide_expenditure": 3214,
    "Loan_from": 3034,
    "food_banana_wilt_diseases": 1348,
    "AgricultureLand": 63,
    "business_number": 25,
}


@pytest.fixture(scope="module")
def real_bytes(real_csv: Path) -> bytes:
    return real_csv.read_bytes()


@pytest.fixture(scope="module")
def real_rows(real_bytes: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(real_bytes.decode())))


@pytest.fixture(scope="module")
def real_frame(real_bytes: bytes) -> pl.DataFrame:
    return read_table(real_bytes).frame


def _csv(rows: list[list[str]], delimiter: str = ",", newline: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return out.getvalue()


def _rejected(data: bytes, caps: ReadCaps = readers.DEFAULT_CAPS) -> str:
    with pytest.raises(RejectedFile) as info:
        read_table(data, caps)
    return str(info.value)


# --- CSV --------------------------------------------------------------------------------------------------


def test_real_csv(real_bytes: bytes, real_rows: list[list[str]]) -> None:
    result = read_table(real_bytes)
    frame = result.frame
    assert (result.format, result.typed, result.details) == (
        "csv",
        False,
        {"encoding": "utf-8", "delimiter": ","},
    )
    assert frame.shape == (3897, 75)
    assert frame.columns[11:13] == ["VSLA_Profits", "VSLA_Profits.1"]
    assert frame.columns[40:42] == ["Assets", "Assets.1"]
    assert frame.columns == dedupe_headers(real_rows[0])
    assert set(frame.schema.dtypes()) == {pl.String}
    assert "_row_defect" not in frame.columns
    assert {c: frame[c].null_count() for c in NULLS} == NULLS
    assert frame.null_count().sum_horizontal().item() == sum(NULLS.values())
    assert frame.row(0) == tuple(v or None for v in real_rows[1])
    assert "MIT-ORU-TU,-M10944" in frame["HouseHoldID"].to_list()  # a quoted cell with a comma stays whole


def test_semicolon_bom_crlf_matches_real(real_rows: list[list[str]], real_frame: pl.DataFrame) -> None:
    data = _csv(real_rows, ";", "\r\n").encode("utf-8-sig")
    result = read_table(data)
    assert result.details == {"encoding": "utf-8-sig", "delimiter": ";"}
    assert result.frame.equals(real_frame)


@pytest.mark.parametrize(
    ("codec", "name"), [("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")]
)
def test_utf16_csv(real_rows: list[list[str]], real_frame: pl.DataFrame, codec: str, name: str) -> None:
    result = read_table(_csv(real_rows[:201]).encode(codec))
    assert result.details == {"encoding": name, "delimiter": ","}
    assert result.frame.equals(real_frame.head(200))


def test_latin1_tab_separated_with_accented_village() -> None:
    text = "District\tVillage\tHouseholdSize\nKanungu\tRwéntobo\t5\nMitooma\tKagati\t\n"
    result = read_table(text.encode("latin-1"))
    assert result.details == {"encoding": "cp1252", "delimiter": "\t"}
    assert result.frame.rows() == [("Kanungu", "Rwéntobo", "5"), ("Mitooma", "Kagati", None)]


def test_delimiter_ties_go_to_comma_and_headers_are_kept_verbatim() -> None:
    frame = read_table(b" District ,a;b,,Assets,Assets\n1,2,3,4,5\n").frame
    assert frame.columns == [" District ", "a;b", "column_3", "Assets", "Assets.1"]
    assert frame.row(0) == ("1", "2", "3", "4", "5")


def test_quoted_delimiters_newlines_and_empty_cells() -> None:
    data = b'a,b,c\r\n"x, y","line1\r\nline2",""\r\n\r\n,"",z\r\n'
    result = read_table(data)
    assert result.frame.rows() == [("x, y", "line1\r\nline2", None), (None, None, "z")]
    assert "_row_defect" not in result.frame.columns


def test_formula_looking_cells_stay_plain_text() -> None:
    rows = [["Village", "Note"], ['=HYPERLINK("http://x","y")', "=1+1"], ["@SUM(A1)", "+2-1"]]
    frame = read_table(_csv(rows).encode()).frame
    assert frame.rows() == [('=HYPERLINK("http://x","y")', "=1+1"), ("@SUM(A1)", "+2-1")]


def test_blank_lines_are_not_rows() -> None:
    frame = read_table(b"a,b\n1,2\n\n3,4\r\n\r\n\n").frame
    assert frame.rows() == [("1", "2"), ("3", "4")]


# --- ragged rows --------------------------------------------------------------------------------------------


def test_ragged_rows_are_flagged_not_dropped(real_rows: list[list[str]]) -> None:
    rows = [list(r) for r in real_rows[:11]]
    rows[3] = rows[3] + ["extra1", "extra2"]
    rows[5] = rows[5][:70]
    frame = read_table(_csv(rows).encode()).frame
    assert frame.shape == (10, 76)
    assert frame.columns[-1] == "_row_defect"
    assert (
        frame["_row_defect"].to_list()
        == [None, None, "77 fields, header has 75", None, "70 fields, header has 75"] + [None] * 5
    )
    assert frame.row(2)[:75] == tuple(v or None for v in real_rows[3])  # first 75 kept
    assert frame.row(4)[:70] == tuple(v or None for v in real_rows[5][:70])
    assert frame.row(4)[70:75] == (None,) * 5  # padded, not invented


def test_truncated_last_row_is_flagged(real_bytes: bytes, real_rows: list[list[str]]) -> None:
    cut = real_bytes[: len(real_bytes) - 300]  # mid-way through the last row
    frame = read_table(cut).frame
    fields = len(cut.rsplit(b"\n", 1)[1].split(b","))
    assert frame.height == 3897
    assert frame["_row_defect"].to_list() == [None] * 3896 + [f"{fields} fields, header has 75"]
    assert frame.row(3895)[:75] == tuple(v or None for v in real_rows[3896])


def test_ragged_rows_with_quoted_line_breaks_use_the_careful_path() -> None:
    data = b'a,b,c\n"multi\nline",2,3\n4,5\n6,7,8,9\n'
    frame = read_table(data).frame
    assert frame.rows() == [
        ("multi\nline", "2", "3", None),
        ("4", "5", None, "2 fields, header has 3"),
        ("6", "7", "8", "4 fields, header has 3"),
    ]


def test_lone_carriage_return_is_data_as_polars_reads_it() -> None:
    frame = read_table(b"a,b\n1,x\ry\n4\n").frame
    assert frame.rows() == [("1", "x\ry", None), ("4", None, "1 fields, header has 2")]


def test_truncated_inside_quotes_is_flagged() -> None:
    frame = read_table(b'a,b,c\n1,2,3\n4,5,"unfinish').frame
    assert frame.rows() == [
        ("1", "2", "3", None),
        ("4", "5", "unfinish", "the row ends inside an unclosed quote"),
    ]


# --- XLSX ---------------------------------------------------------------------------------------------------


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _workbook(tmp_path: Path, real_rows: list[list[str]], notes_width: int = 1) -> bytes:
    path = tmp_path / "upload.xlsx"
    book = xlsxwriter.Workbook(path)
    notes = book.add_worksheet("notes")
    for col in range(notes_width):
        notes.write_string(0, col, f"About this file {col}")
    notes.write_string(1, 0, "Collected 2024")
    sheet = book.add_worksheet("survey")
    header = real_rows[0] + ["", "mixed", "formula", "link"]
    for col, name in enumerate(header):
        if name:
            sheet.write_string(0, col, name)
    for r, row in enumerate(real_rows[1:21], 1):
        for col, value in enumerate(row):
            sheet.write(r, col, _number(value) if value else None)
        sheet.write(r, 76, r if r < 18 else "n/a")
        sheet.write_formula(r, 77, f"=E{r + 1}*2", None, r * 10)
        sheet.write_string(r, 78, '=HYPERLINK("http://x","y")')
    book.close()
    return path.read_bytes()


def test_xlsx_picks_survey_sheet_and_keeps_types(tmp_path: Path, real_rows: list[list[str]]) -> None:
    result = read_table(_workbook(tmp_path, real_rows))
    frame = result.frame
    assert (result.format, result.typed, result.details) == ("xlsx", True, {"sheet": "survey"})
    assert frame.shape == (20, 79)
    assert frame.columns[:75] == dedupe_headers(real_rows[0])
    assert frame.columns[75:] == ["column_76", "mixed", "formula", "link"]
    assert frame.schema["District"] == pl.String and frame.schema["HouseholdSize"] == pl.Float64
    assert frame["HouseholdSize"].to_list() == [float(r[4]) for r in real_rows[1:21]]
    assert frame["mixed"].dtype == pl.String
    assert frame["mixed"].to_list()[16:] == ["17", "n/a", "n/a", "n/a"]  # the text cells survive
    assert frame["formula"].to_list() == [r * 10.0 for r in range(1, 21)]  # cached values, never evaluated
    assert set(frame["link"].to_list()) == {'=HYPERLINK("http://x","y")'}


def test_xlsx_sheet_choice_uses_score_header(tmp_path: Path, real_rows: list[list[str]]) -> None:
    data = _workbook(tmp_path, real_rows, notes_width=100)
    assert read_table(data).details["sheet"] == "notes"  # most columns when nobody scores
    known = set(real_rows[0])
    result = read_table(data, score_header=lambda headers: sum(h in known for h in headers))
    assert result.details["sheet"] == "survey"
    assert result.frame.height == 20


def test_xlsx_without_header_row_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("a")
    book.add_worksheet("b")
    book.close()
    assert _rejected(path.read_bytes()) == "the workbook has no sheet with a header row"


def test_xlsx_header_only_and_row_cap(tmp_path: Path, real_rows: list[list[str]]) -> None:
    data = _workbook(tmp_path, real_rows)
    assert _rejected(data, ReadCaps(max_rows=19)) == "the file has more than 19 data rows, the limit"
    path = tmp_path / "header.xlsx"
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("s").write_row(0, 0, ["District", "Village"])
    book.close()
    assert _rejected(path.read_bytes()) == "the file has a header but no data rows"


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def test_zip_bomb_is_rejected_from_the_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[bytes] = []
    monkeypatch.setattr(readers.fastexcel, "read_excel", opened.append)
    bomb = _zip({"xl/workbook.xml": b"<workbook/>", "xl/worksheets/sheet1.xml": b" " * 30 * 1024**2})
    reason = _rejected(bomb)
    assert reason.startswith("the workbook is compressed ") and reason.endswith(
        "to 1, which looks like a zip bomb"
    )
    assert opened == []  # never handed to the spreadsheet reader
    big = _zip(
        {"xl/workbook.xml": b"<workbook/>", "xl/worksheets/sheet1.xml": random.Random(1).randbytes(300_000)}
    )
    reason = _rejected(big, ReadCaps(max_decompressed_bytes=200_000))
    assert reason == "the workbook unpacks to 300,011 bytes; the limit is 200,000"


def test_zip_that_is_not_a_workbook_is_rejected() -> None:
    assert (
        _rejected(_zip({"report.docx.xml": b"<doc/>"}))
        == "the file is a zip archive but not an Excel workbook (.xlsx)"
    )
    assert _rejected(b"PK\x03\x04 broken") == "the file looks like a zip archive but is damaged"


def test_damaged_workbook_reason_has_no_cell_values() -> None:
    data = _zip({"xl/workbook.xml": b"<workbook>SECRET-NAME", "[Content_Types].xml": b"SECRET-NAME"})
    reason = _rejected(data)
    assert reason == "the XLSX file is damaged or not laid out as a table"


# --- JSON, JSON lines, Parquet ------------------------------------------------------------------------------


RECORDS = [
    {
        "District": "Kanungu",
        "HouseholdSize": 5,
        "AgricultureLand": 1.5,
        "Cluster": "Ibarya",
        "extra": {"a": 1},
    },
    {"District": "Mitooma", "HouseholdSize": 7, "AgricultureLand": 2, "Cluster": 12, "extra": [1, 2]},
    {"District": "Rubanda", "HouseholdSize": None, "AgricultureLand": None},
]
EXPECTED_ROWS = [
    ("Kanungu", 5, 1.5, "Ibarya", '{"a": 1}'),
    ("Mitooma", 7, 2.0, "12", "[1, 2]"),
    ("Rubanda", None, None, None, None),
]


def test_json_array() -> None:
    result = read_table(json.dumps(RECORDS).encode())
    assert (result.format, result.typed, result.details) == ("json", True, {"encoding": "utf-8"})
    assert result.frame.columns == ["District", "HouseholdSize", "AgricultureLand", "Cluster", "extra"]
    assert result.frame.schema["HouseholdSize"] == pl.Int64 and result.frame.schema["Cluster"] == pl.String
    assert result.frame.rows() == EXPECTED_ROWS


def test_json_lines() -> None:
    data = ("\n".join(json.dumps(r) for r in RECORDS) + "\n\n").encode()
    assert sniff_format(data) == "jsonl"
    result = read_table(data)
    assert (result.format, result.typed) == ("jsonl", True)
    assert result.frame.rows() == EXPECTED_ROWS


def test_json_rejections() -> None:
    assert (
        _rejected(b"[" * 100_000 + b"]" * 100_000)
        == "the JSON is nested 100,000 levels deep; the limit is 32"
    )
    assert (
        _rejected(b'{"a": ' * 50 + b"1" + b"}" * 50) == "the JSON is nested 50 levels deep; the limit is 32"
    )
    # brackets inside strings (even after an escaped quote) are not nesting
    assert read_table(b'[{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\""}]').frame.rows() == [
        ("[" * 42 + '"',)
    ]
    assert _rejected(b"[1, 2, 3]") == "the JSON file must be a list of records (objects)"
    assert (
        _rejected(b'{\n  "District": "Kanungu"\n}')
        == "the JSON file holds a single object, not a list of records"
    )
    assert _rejected(b"[]") == "the JSON file has no records"
    assert _rejected(b'[{"a": 1},\n {"a": }]') == "the JSON is not valid (line 2, column 8)"
    assert _rejected(b'{"a": 1}\n{"a": 2\n') == "the JSON is not valid (line 2, column 8)"
    assert (
        _rejected(b'[{"a": 1}, {"a": 2}]', ReadCaps(max_rows=1))
        == "the file has more than 1 data rows, the limit"
    )


def test_parquet(real_frame: pl.DataFrame) -> None:
    out = io.BytesIO()
    typed = real_frame.head(100).with_columns(pl.col("HouseholdSize").cast(pl.Int64), nested=pl.lit([1, 2]))
    typed.write_parquet(out)
    result = read_table(out.getvalue())
    assert (result.format, result.typed, result.details) == ("parquet", True, {})
    assert result.frame.drop("nested").equals(typed.drop("nested"))
    assert result.frame["nested"].to_list() == ["[1, 2]"] * 100
    assert (
        _rejected(out.getvalue(), ReadCaps(max_rows=99)) == "the file has more than 99 data rows, the limit"
    )
    assert (
        _rejected(b"PAR1" + b"Kanungu,Rwentobo" * 10)
        == "the PARQUET file is damaged or not laid out as a table"
    )


# --- rejections and caps ------------------------------------------------------------------------------------


def test_empty_whitespace_and_header_only() -> None:
    assert _rejected(b"") == "the file is empty"
    assert _rejected(b"  \r\n\t\n ") == "the file contains only blank space"
    assert _rejected(b"District,Village\n") == "the file has a header but no data rows"
    assert _rejected(b"District,Village\r\n\r\n\n") == "the file has a header but no data rows"


def test_random_bytes_are_not_a_table() -> None:
    junk = random.Random(7).randbytes(20_000)
    assert _rejected(junk) == "not a text table, spreadsheet, JSON or Parquet file"
    assert (
        _rejected(b"a,b\n\x01\x02\x03\x04\x05\x06,\x07\n")
        == "not a text table, spreadsheet, JSON or Parquet file"
    )
    with pytest.raises(RejectedFile):
        sniff_format(junk[:4096])
    assert read_table(b"a,b\n1,\x07\n").frame.rows() == [("1", "\x07")]  # a single stray control byte is data


def test_fifty_megabyte_single_line_is_rejected_quickly() -> None:
    data = b"x," * (25 * 1024**2)
    started = time.perf_counter()
    assert _rejected(data) == "line 1 is 52,428,800 bytes; the limit is 1,048,576"
    assert time.perf_counter() - started < 5
    assert (
        _rejected(b"a,b\n1,2\n" + b"3" * 2000 + b",4\n", ReadCaps(max_line_bytes=1000))
        == "line 3 is 2,002 bytes; the limit is 1,000"
    )


def test_row_and_byte_caps(real_bytes: bytes) -> None:
    assert (
        _rejected(real_bytes, ReadCaps(max_rows=3000)) == "the file has more than 3,000 data rows, the limit"
    )
    spanning = b'a,b\n"x\ny",1\n2,3\n4,5\n'
    assert _rejected(spanning, ReadCaps(max_rows=2)) == "the file has more than 2 data rows, the limit"
    unclosed = b'a,b\n1,2\n3,4\n5,"6'
    assert _rejected(unclosed, ReadCaps(max_rows=2)) == "the file has more than 2 data rows, the limit"
    assert (
        _rejected(real_bytes, ReadCaps(max_bytes=1_000_000))
        == f"the file is {len(real_bytes):,} bytes; the limit is 1,000,000"
    )


def test_sniff_format() -> None:
    assert sniff_format(b"PK\x03\x04rest") == "xlsx"
    assert sniff_format(b"PAR1rest") == "parquet"
    assert sniff_format(b'  [{"a": 1}]') == "json"
    assert sniff_format(b'{"a": 1}\n{"a": 2}\n') == "jsonl"
    assert sniff_format(b'{\n "a": 1\n}') == "json"
    assert sniff_format("\ufeffDistrict;Village\r\n".encode()) == "csv"
    assert sniff_format("District,Village\n".encode("utf-16-le")) == "csv"


def test_dedupe_headers_matches_pandas() -> None:
    for headers, expected in [
        (["x", "y", "x", "x"], ["x", "y", "x.1", "x.2"]),
        (
            ["a", "a", "a.1", "b", "a", "b"],
            ["a", "a.2", "a.1", "b", "a.3", "b.1"],
        ),  # a real "a.1" keeps its name
        (["a", "a.1", "a"], ["a", "a.1", "a.2"]),
    ]:
        pandas_names = list(
            pd.read_csv(io.StringIO(",".join(headers) + "\n" + ",".join("1" * len(headers)))).columns
        )
        assert dedupe_headers(headers) == pandas_names == expected
