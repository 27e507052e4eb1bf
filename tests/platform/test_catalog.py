"""Catalog behaviour on SQLite and on PostgreSQL (127.0.0.1:5432)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from tasks.platform.catalog import Catalog, DuplicateFile


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        yield Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
        return
    url = request.getfixturevalue("pg_url")
    cat = Catalog(url)
    yield cat
    with cat.engine.begin() as conn:
        for table in ("row_identities", "zone_objects", "quality_metrics", "rule_outcomes", "ingestions"):
            conn.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 - the fixed table names above


def _land(catalog: Catalog, ingestion_id: str, sha: str) -> None:
    catalog.add_ingestion(
        id=ingestion_id,
        source="test",
        door="cli",
        sha256=sha,
        size_bytes=10,
        raw_key=f"raw/{ingestion_id}.enc",
        status="landed",
    )


def test_migrations_create_every_table(catalog: Catalog) -> None:
    tables = set(inspect(catalog.engine).get_table_names())
    assert {
        "ingestions",
        "rule_outcomes",
        "quality_metrics",
        "zone_objects",
        "row_identities",
        "alembic_version",
    } <= tables
    catalog.migrate()  # idempotent


def test_same_bytes_are_recognised(catalog: Catalog) -> None:
    _land(catalog, "ing-a", "a" * 64)
    with pytest.raises(DuplicateFile) as caught:
        _land(catalog, "ing-b", "a" * 64)
    assert caught.value.earlier.id == "ing-a"
    assert catalog.get("ing-b") is None


def test_claiming_identities_is_idempotent_per_ingestion(catalog: Catalog) -> None:
    _land(catalog, "ing-a", "a" * 64)
    _land(catalog, "ing-b", "b" * 64)
    rows = [(f"{i:032x}", "c" * 32) for i in range(1000)]
    assert catalog.claim_identities("ing-a", rows) == {}
    assert catalog.claim_identities("ing-a", rows) == {}  # a re-run of the same ingestion
    later = rows[500:] + [(f"{i:032x}", "d" * 32) for i in range(1000, 1100)]
    earlier = catalog.claim_identities("ing-b", later)
    assert len(earlier) == 500 and set(earlier.values()) == {"c" * 32}
    assert catalog.count_identities("ing-a") == 1000
    assert catalog.count_identities("ing-b") == 100


def test_record_result_replaces_on_rerun(catalog: Catalog) -> None:
    _land(catalog, "ing-a", "a" * 64)
    catalog.start("ing-a", None)
    report = {"rows_received": 3, "rows_accepted": 2, "rows_quarantined": 1, "rows_duplicate": 0}
    outcome = [
        {
            "rule": "household_size.range",
            "expectation": "ExpectColumnValuesToBeBetween",
            "column": "household_size",
            "unexpected_count": 1,
            "element_count": 3,
        }
    ]
    objects = [{"zone": "validated", "key": "validated/ing-a/part-00000.parquet", "rows": 2, "size_bytes": 9}]
    for _ in range(2):
        catalog.record_result(
            "ing-a",
            status="completed_with_quarantine",
            report=report,
            rule_outcomes=outcome,
            metrics={"completeness": 0.97},
            objects=objects,
        )
    ingestion = catalog.get("ing-a")
    assert ingestion.status == "completed_with_quarantine" and ingestion.rows_quarantined == 1
    assert ingestion.attempts == 1 and ingestion.report == report
    assert len(catalog.rule_outcomes("ing-a")) == 1
    assert catalog.metrics("ing-a") == {"completeness": 0.97}
    assert [o.key for o in catalog.zone_objects("ing-a")] == ["validated/ing-a/part-00000.parquet"]


def test_failures_are_recorded_and_listed_newest_first(catalog: Catalog) -> None:
    _land(catalog, "ing-a", "a" * 64)
    _land(catalog, "ing-b", "b" * 64)
    catalog.fail("ing-b", "failed", "storage unreachable\nsecond line")
    assert catalog.get("ing-b").error.startswith("storage unreachable")
    assert [i.id for i in catalog.list_ingestions()] == ["ing-b", "ing-a"]
    assert [i.id for i in catalog.list_ingestions(status="failed")] == ["ing-b"]


def test_audit_log_is_append_only(catalog: Catalog) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    from tasks.platform.catalog.models import AuditEvent
    from tasks.protection import audit

    audit.record(catalog, "clerk-1", "exported", "households", {"rows": 12})
    for change in (update(AuditEvent).values(actor="someone-else"), delete(AuditEvent)):
        with pytest.raises(DBAPIError, match="append-only"), catalog.session() as s:
            s.execute(change)
    [event] = audit.events(catalog, actor="clerk-1")
    assert (event.action, event.target, event.detail) == ("exported", "households", {"rows": 12})
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(catalog, "clerk-1", "edited")
