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


# ---- survey rounds -----------------------------------------------------------------------------------------


def _generated(tmp_path: Path, rows: int, seed: int, **columns: Any) -> Path:
    """A generated survey file, with metadata columns replaced (or, with None, left out)."""
    from tasks.ingest.generate import generate_households, write_households

    frame = generate_households(rows, seed=seed, bad_rate=0.1).frame
    for name, value in columns.items():
        frame = frame.drop(name) if value is None else frame.with_columns(pl.Series(name, value, pl.String))
    return write_households(frame, tmp_path / f"rounds-{seed}.csv")


def _zone_rounds(rt: Any, zone: str, ingestion_id: str) -> dict[str, int]:
    frame = read_zone(rt.store, zone, ingestion_id)
    return dict(frame.group_by("survey_round").len().sort("survey_round").iter_rows())


def test_declared_round_reaches_every_zone_and_the_report(tmp_path: Path, storage_backend: Settings) -> None:
    from tasks.ingest.zones import PROCESSED_COLUMNS, QUARANTINE_COLUMNS, VALIDATED_COLUMNS
    from tasks.protection.audit import events

    path = _generated(tmp_path, 240, seed=31)
    result = CliRunner().invoke(app, ["ingest", str(path), "--round", "2025-baseline", "--json"])
    assert result.exit_code == 0, result.output
    report = _json(result.output)
    accepted, held = report["rows_accepted"], report["rows_quarantined"]
    assert accepted > 0 and held > 0  # bad_rate 0.1: both zones are written
    assert report["rounds"] == {"2025-baseline": accepted}
    assert report["rounds_quarantined"] == {"2025-baseline": held}
    assert report["declared_round"] == "2025-baseline"
    rt = runtime_for(storage_backend)
    ingestion_id = report["ingestion_id"]
    assert rt.catalog.get(ingestion_id).survey_round == "2025-baseline"
    assert "declared at landing as `2025-baseline`" in _artifact(ingestion_id)
    for zone, columns, rows in (
        ("validated", VALIDATED_COLUMNS, accepted),
        ("processed", PROCESSED_COLUMNS, accepted),
        ("quarantine", QUARANTINE_COLUMNS, held),
    ):
        stored = read_zone(rt.store, zone, ingestion_id)
        assert tuple(stored.columns) == columns and columns.count("survey_round") == 1, zone
        assert stored["survey_round"].to_list() == ["2025-baseline"] * rows, zone
    [event] = [e for e in events(rt.catalog, action="landed") if e.target == ingestion_id]
    assert event.detail == {
        "door": "cli",
        "bytes": path.stat().st_size,
        "format": None,
        "round": "2025-baseline",
    }
    # the same bytes under another round: still the same file, nothing landed again
    again = CliRunner().invoke(app, ["ingest", str(path), "--round", "2026-Q2", "--json"])
    assert again.exit_code == 0, again.output
    assert _json(again.output)["status"] == "duplicate_file"
    assert _json(again.output)["duplicate_of"] == ingestion_id
    assert len(rt.catalog.list_ingestions()) == 1
    assert rt.catalog.get(ingestion_id).survey_round == "2025-baseline"


def test_rounds_come_from_submitted_at_by_quarter(tmp_path: Path, storage_backend: Settings) -> None:
    # the first half in Q3 2025, the second in Q4, one row each way around the quarter's edge in UTC
    times = ["2025-08-14T09:00:00Z"] * 150 + ["2025-11-02 10:15:00"] * 149 + ["2025-10-01T02:00:00+03:00"]
    report = ingest_path(_generated(tmp_path, 300, seed=32, submitted_at=times))
    assert report["declared_round"] is None
    assert set(report["rounds"]) == {"2025-Q3", "2025-Q4"}
    assert sum(report["rounds"].values()) == report["rows_accepted"]
    assert sum(report["rounds_quarantined"].values()) == report["rows_quarantined"]
    rt = runtime_for(storage_backend)
    assert _zone_rounds(rt, "validated", report["ingestion_id"]) == report["rounds"]
    assert _zone_rounds(rt, "quarantine", report["ingestion_id"]) == report["rounds_quarantined"]
    stored = pl.concat(
        read_zone(rt.store, zone, report["ingestion_id"]).select("submitted_at", "survey_round")
        for zone in ("validated", "quarantine")
    )
    by_time = dict(stored.group_by("submitted_at").agg(pl.col("survey_round").unique().sort()).iter_rows())
    assert by_time["2025-08-14T09:00:00Z"] == ["2025-Q3"]
    assert by_time["2025-11-02 10:15:00"] == ["2025-Q4"]
    # 02:00 in Kampala on 1 October is 23:00 UTC on 30 September: the third quarter
    assert by_time["2025-10-01T02:00:00+03:00"] == ["2025-Q3"]
    assert "from each row's submitted_at" in _artifact(report["ingestion_id"])


def test_rows_without_submitted_at_take_the_landing_quarter(
    tmp_path: Path, storage_backend: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.ingest.rounds import round_of

    report = ingest_path(_generated(tmp_path, 120, seed=33, submitted_at=None))
    rt = runtime_for(storage_backend)
    landed_at = rt.catalog.get(report["ingestion_id"]).received_at
    quarter = round_of(landed_at, "quarter")
    assert quarter.startswith(f"{landed_at.year}-Q")
    assert report["rounds"] == {quarter: report["rows_accepted"]}
    assert _zone_rounds(rt, "processed", report["ingestion_id"]) == {quarter: report["rows_accepted"]}
    # the calendar is a setting: by month, the same fallback reads YYYY-MM
    monkeypatch.setenv("RTV_ROUND_CALENDAR", "month")
    monthly = ingest_path(_generated(tmp_path, 60, seed=34, submitted_at=None))
    month = round_of(runtime_for(Settings()).catalog.get(monthly["ingestion_id"]).received_at, "month")
    assert monthly["rounds"] == {month: monthly["rows_accepted"]} and len(month) == 7


def test_cli_refuses_a_bad_round_and_lands_nothing(tmp_path: Path, storage_backend: Settings) -> None:
    path = _generated(tmp_path, 20, seed=35)
    result = CliRunner().invoke(app, ["ingest", str(path), "--round", "bad/label"])
    assert result.exit_code == 2, result.output
    assert "error: --round 'bad/label': not a valid survey round" in result.output
    assert "Traceback" not in result.output
    rt = runtime_for(storage_backend)
    assert rt.catalog.list_ingestions() == [] and rt.store.list("raw") == []
