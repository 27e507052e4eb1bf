"""The ingest flow end to end on the embedded defaults, with the real RTV file as proof."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from flows.ingest import ingest
from tasks.ingest.landing import land
from tasks.ingest.zones import read_zone, report_key
from tasks.platform.settings import Settings
from tasks.protection.protect import pseudonym
from tasks.runtime import runtime_for

pytestmark = pytest.mark.usefixtures("prefect_server")
COUNTS = ("rows_received", "rows_accepted", "rows_quarantined", "rows_duplicate")


def ingest_path(path: Path, source: str = "test") -> dict[str, Any]:
    rt = runtime_for(Settings())
    landed = land(rt, path, source_name=source, door="cli", filename=path.name)
    assert not landed.is_duplicate
    return ingest(landed.ingestion_id)


@pytest.fixture(scope="module")
def real_frame(real_csv: Path) -> pd.DataFrame:
    return pd.read_csv(real_csv, dtype={"business_number": str})


def test_real_file_every_row_accounted_and_protected(storage_backend: Settings, real_csv: Path) -> None:
    report = ingest_path(real_csv)
    assert report["rows_received"] == 3897
    assert (
        report["rows_received"]
        == report["rows_accepted"] + report["rows_quarantined"] + report["rows_duplicate"]
    )
    assert report["status"] == "completed_with_quarantine"
    assert report["quarantine_reasons"]["phones_owned.range"] == 1
    assert report["quarantine_reasons"]["row.readable"] == 1
    assert report["quarantine_reasons"]["household_id.repeated"] == 89
    assert report["fixes"] == {"household_id_case": 212}
    rt = runtime_for(storage_backend)
    assert report["data_docs"] == rt.store.uri(report_key(report["ingestion_id"], "data_docs/index.html"))
    assert b"<html" in rt.store.get(report_key(report["ingestion_id"], "data_docs/index.html")).lower()

    stored = pl.concat(
        [
            read_zone(rt.store, "validated").select("source_row", "household_pseudonym"),
            read_zone(rt.store, "quarantine").select("source_row", "household_pseudonym"),
        ]
    )
    assert sorted(stored["source_row"].to_list()) == list(range(1, 3898))
    ids = pl.read_csv(real_csv, infer_schema=False)["HouseHoldID"].to_list()
    by_row = dict(stored.iter_rows())
    assert all(by_row[i + 1] == pseudonym(rt.keyring, household) for i, household in enumerate(ids))

    ingestion = rt.catalog.get(report["ingestion_id"])
    assert (ingestion.rows_accepted, ingestion.status) == (report["rows_accepted"], report["status"])
    assert {o.zone for o in rt.catalog.zone_objects(ingestion.id)} == {"validated", "quarantine", "processed"}
    processed = read_zone(rt.store, "processed")
    assert processed.height == report["rows_accepted"]
    assert set(processed["progress_status"].unique()) == {
        "On Track",
        "At Risk",
        "Struggling",
        "Severely Struggling",
    }

    assert "3,716" in _artifact(report["ingestion_id"])  # the markdown import report published by the flow

    needles = {h.encode() for h in ids} | {h.upper().encode() for h in ids}
    stored_objects = rt.store.list()
    assert len(stored_objects) > 5
    for key in stored_objects:  # every object of every zone, on whichever backend the test runs
        data = rt.store.get(key)
        assert not any(n in data for n in needles), f"plaintext household id in {rt.store.uri(key)}"
    for path in Path(storage_backend.data_dir).rglob(
        "*"
    ):  # and what stays on local disk (catalog, model runs)
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"plaintext household id in {path}"


def _artifact(ingestion_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"import-report-{ingestion_id}"]))
        )
    return str(artifact.data)


def _formats(frame: pd.DataFrame, folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    out["semicolon_bom_crlf"] = folder / "a.csv"
    frame.to_csv(out["semicolon_bom_crlf"], sep=";", index=False, encoding="utf-8-sig", lineterminator="\r\n")
    out["utf16"] = folder / "b.csv"
    frame.to_csv(out["utf16"], index=False, encoding="utf-16")
    out["xlsx"] = folder / "c.xlsx"
    with pd.ExcelWriter(out["xlsx"], engine="xlsxwriter") as writer:
        pd.DataFrame({"notes": ["Exported for the quarterly review", "Do not edit"]}).to_excel(
            writer, sheet_name="notes", index=False
        )
        frame.to_excel(writer, sheet_name="households", index=False)
    out["json"] = folder / "d.json"
    frame.to_json(out["json"], orient="records", double_precision=15)
    out["jsonl"] = folder / "e.jsonl"
    frame.to_json(out["jsonl"], orient="records", lines=True, double_precision=15)
    out["parquet"] = folder / "f.parquet"
    frame.to_parquet(out["parquet"], index=False)
    out["kobo"] = folder / "g.csv"
    kobo_frame(frame).to_csv(out["kobo"], index=False)
    return out


def kobo_frame(frame: pd.DataFrame, start: int = 0) -> pd.DataFrame:
    """A KoboToolbox-style export: group-prefixed headers plus system columns."""
    groups = {
        "District": "location",
        "Cluster": "location",
        "Village": "location",
        "HouseHoldID": "household",
    }
    kobo = frame.rename(columns={c: f"{groups.get(c, 'survey/module')}/{c}" for c in frame.columns})
    n = len(frame)
    kobo["_uuid"] = [f"5f0c1a2b-0000-4000-8000-{start + i:012d}" for i in range(n)]
    kobo["meta/instanceID"] = "uuid:" + kobo["_uuid"]
    kobo["_submission_time"] = "2026-10-01T09:30:00"
    kobo["_id"] = range(start + 1, start + n + 1)
    kobo["_index"] = range(start + 1, start + n + 1)
    kobo["__version__"] = "vQ3x2"
    return kobo


def test_every_format_gives_the_same_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rtv_env: Settings, real_frame: pd.DataFrame
) -> None:
    reference = ingest_path(_write_csv(real_frame, tmp_path))
    expected = {k: reference[k] for k in COUNTS}
    for name, path in _formats(real_frame, tmp_path).items():
        monkeypatch.setenv(
            "RTV_DATA_DIR", str(tmp_path / f"data-{name}")
        )  # a fresh catalog: no cross-file duplicates
        report = ingest_path(path)
        assert {k: report[k] for k in COUNTS} == expected, name
        assert report["status"] == "completed_with_quarantine", name
    assert expected["rows_received"] == 3897


def _write_csv(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "plain.csv"
    frame.to_csv(path, index=False)
    return path


def test_cumulative_kobo_export_counts_earlier_rows_as_duplicates(
    tmp_path: Path, storage_backend: Settings, real_frame: pd.DataFrame
) -> None:
    first, everything = tmp_path / "week1.csv", tmp_path / "week2.csv"
    kobo_frame(real_frame.head(2000)).to_csv(first, index=False)
    kobo_frame(real_frame).to_csv(everything, index=False)
    one = ingest_path(first)
    two = ingest_path(everything)
    assert one["rows_received"] == 2000 and one["rows_duplicate"] == 0
    assert (
        two["rows_received"] == 3897
        and two["rows_duplicate"] == 2000
        and two["duplicates_of_earlier"] == 2000
    )
    assert two["rows_accepted"] + two["rows_quarantined"] == 1897


def test_same_file_twice_is_a_duplicate_file_and_nothing_is_stored_twice(
    tmp_path: Path, storage_backend: Settings
) -> None:
    path = tmp_path / "gen.csv"
    result = CliRunner().invoke(app, ["generate", "--rows", "300", "--seed", "4", "--out", str(path)])
    assert result.exit_code == 0, result.output
    first = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert first.exit_code == 0, first.output
    rt = runtime_for(storage_backend)
    objects_before = rt.store.list()
    files_before = sorted(
        p for p in Path(storage_backend.data_dir).rglob("*") if p.is_file() and p.suffix != ".db-wal"
    )
    second = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert second.exit_code == 0, second.output
    report = _json(second.output)
    assert (
        report["status"] == "duplicate_file" and report["duplicate_of"] == _json(first.output)["ingestion_id"]
    )
    assert report["rows_received"] == 0
    assert len(rt.catalog.list_ingestions()) == 1
    assert len(rt.store.list("raw")) == 1
    assert rt.store.list() == objects_before
    files_after = sorted(
        p for p in Path(storage_backend.data_dir).rglob("*") if p.is_file() and p.suffix != ".db-wal"
    )
    assert [p for p in files_after if "catalog.db" not in p.name] == [
        p for p in files_before if "catalog.db" not in p.name
    ]


def test_rerunning_an_ingestion_duplicates_nothing(tmp_path: Path, storage_backend: Settings) -> None:
    path = tmp_path / "gen.csv"
    CliRunner().invoke(
        app, ["generate", "--rows", "400", "--seed", "8", "--bad-rate", "0.1", "--out", str(path)]
    )
    first = ingest_path(path)
    again = ingest(first["ingestion_id"])
    assert {k: again[k] for k in COUNTS} == {k: first[k] for k in COUNTS}
    rt = runtime_for(storage_backend)
    assert read_zone(rt.store, "validated").height == first["rows_accepted"]
    assert (
        rt.catalog.count_identities(first["ingestion_id"])
        == first["rows_accepted"] + first["rows_quarantined"]
    )
    assert rt.catalog.get(first["ingestion_id"]).attempts == 2


def _json(output: str) -> dict[str, Any]:
    import json

    return json.loads(output[output.index("{") :])


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 * 1024 * 1024))
    return buffer.getvalue()


MALFORMED = {
    "empty.csv": (b"", "rejected"),
    "header_only.csv": (b"District,Cluster,Village,HouseHoldID\n", "rejected"),
    "random.csv": (bytes(range(256)) * 64, "rejected"),
    "one_line.csv": (b"x" * (50 * 1024 * 1024), "rejected"),
    "bomb.xlsx": (_zip_bomb(), "rejected"),
    "nested.json": (b"[" * 100_000 + b"]" * 100_000, "rejected"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_are_rejected_with_a_reason_and_raw_bytes_kept(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_backend: Settings
) -> None:
    monkeypatch.setenv("RTV_MAX_DECOMPRESSED_BYTES", str(16 * 1024 * 1024))
    data, _ = MALFORMED[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    rt = runtime_for(Settings())
    if not data:
        assert "empty" in result.output and rt.catalog.list_ingestions() == []
        return
    [ingestion] = rt.catalog.list_ingestions()
    assert ingestion.status == "rejected" and ingestion.error and "\n" not in ingestion.error
    assert rt.store.exists(ingestion.raw_key)
    assert ingestion.report["reason"] in result.output


def test_bad_rows_are_quarantined_not_the_file(
    tmp_path: Path, storage_backend: Settings, real_csv: Path
) -> None:
    lines = real_csv.read_bytes().splitlines(keepends=True)
    header, rows = lines[0], lines[1:201]
    extra = rows[5].rstrip(b"\n") + b",surplus,fields\n"
    formula = rows[6].replace(rows[6].split(b",")[2], b'"=HYPERLINK(""http://x"",""y"")"', 1)
    number_formula = rows[7].replace(b"," + rows[7].split(b",")[4] + b",", b',"=1+1",', 1)
    truncated = rows[199][: len(rows[199]) // 2]
    path = tmp_path / "messy.csv"
    path.write_bytes(
        header + b"".join(rows[:5]) + extra + formula + number_formula + b"".join(rows[8:199]) + truncated
    )
    result = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = _json(result.output)
    assert report["rows_received"] == 200
    rt = runtime_for(storage_backend)
    held = read_zone(rt.store, "quarantine")
    reasons = {
        row: {r["rule"] for r in rules}
        for row, rules in held.select("source_row", "quarantine_reasons").rows()
    }
    assert "row.readable" in reasons[6]  # surplus fields
    assert "village.pattern" in reasons[7]  # a formula where a village name belongs
    assert "row.readable" in reasons[8]  # a formula where a number belongs
    assert "row.readable" in reasons[200]  # cut off mid-row
