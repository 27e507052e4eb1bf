"""The catalog: metadata database (SQLite by default, PostgreSQL in production) behind plain methods."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tasks.platform.catalog.models import (
    Ingestion,
    ModelDecision,
    QualityMetric,
    Review,
    RowIdentity,
    RuleOutcome,
    ZoneObject,
    table_of,
    utcnow,
)

MIGRATIONS = Path(__file__).parent / "migrations"
_INGESTIONS = table_of(Ingestion)
_INSERT_INGESTION = insert(_INGESTIONS)
_ID_BY_SHA256 = select(_INGESTIONS.c.id).where(_INGESTIONS.c.sha256 == bindparam("sha256"))


class DuplicateFile(Exception):
    """These bytes were landed before; carries the earlier ingestion."""

    def __init__(self, earlier: Ingestion) -> None:
        super().__init__(earlier.id)
        self.earlier = earlier


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (dashboard) never block the writer (flows)
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-131072")  # 128 MB: a million-row identity claim stays in cache
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine with sane pooling and, for SQLite, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def load_temporary(connection: Connection, table: str, rows: pl.DataFrame, types: dict[str, str]) -> None:
    """Create a temporary table and fill it at driver speed: COPY on PostgreSQL, executemany on SQLite.

    The ORM costs ~10x. The table is dropped first: a failed attempt on a pooled connection may leave it.
    """
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")  # a failed call may leave one behind (SQLite)
    definition = ", ".join(f"{name} {sql_type}" for name, sql_type in types.items())
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {table} ({definition})")
    if rows.height == 0:
        return
    driver = connection.connection.driver_connection
    if driver is None:  # only after the connection was invalidated, which would make the load fail anyway
        raise RuntimeError("the catalog connection is closed")
    cursor = driver.cursor()
    names = ", ".join(types)
    if connection.dialect.name == "postgresql":
        # CSV with an explicit null marker: village names may hold quotes or commas, answers may be null
        payload = rows.select(list(types)).write_csv(include_header=False, null_value="\\N").encode()
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
            copy.write(payload)
    else:
        # S608: table and column names are this module's constants; the values go as parameters
        insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(types))})"  # noqa: S608
        cursor.executemany(insert, rows.select(list(types)).iter_rows())


class Catalog:
    """Repository over the catalog tables; every method is one short transaction."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer: threads of one process take turns here instead of in SQLite's busy handler,
        # which sleeps 1-100 ms per retry (a busy API process would spend its latency budget sleeping)
        self.write_lock: AbstractContextManager[Any] = (
            threading.RLock() if self.engine.dialect.name == "sqlite" else nullcontext()
        )
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success, rolled back on error."""
        with self.write_lock, self._sessions.begin() as session:
            yield session

    # ---- ingestions -------------------------------------------------------------------------------------

    def add_ingestion(self, **fields: Any) -> Ingestion:
        """Insert a landed ingestion; raises DuplicateFile when its sha256 is already catalogued.

        A prepared Core insert, not the ORM unit of work: every door calls this once per landing (the API
        once per survey), and the ORM flush cost ~4x more.
        """
        values = {"received_at": utcnow(), "attempts": 0, **fields}
        try:
            with self.write_lock, self.engine.begin() as connection:
                connection.execute(_INSERT_INGESTION, values)
        except IntegrityError:
            earlier = self.find_by_sha256(fields["sha256"])
            if earlier is None:
                raise
            raise DuplicateFile(earlier) from None
        return Ingestion(**values)

    def find_by_sha256(self, sha256: str) -> Ingestion | None:
        """The ingestion that landed these bytes, if any (an indexed id lookup first: usually there is none)."""
        with self.engine.connect() as connection:
            found = connection.execute(_ID_BY_SHA256, {"sha256": sha256}).scalar()
        return self.get(found) if found else None

    def get(self, ingestion_id: str) -> Ingestion | None:
        """One ingestion by id."""
        with self.session() as s:
            return s.get(Ingestion, ingestion_id)

    def update(self, ingestion_id: str, **fields: Any) -> None:
        """Set fields of an ingestion."""
        with self.session() as s:
            s.execute(update(Ingestion).where(Ingestion.id == ingestion_id).values(**fields))

    def start(self, ingestion_id: str, flow_run_id: str | None) -> None:
        """Mark an ingestion running and count the attempt."""
        with self.session() as s:
            s.execute(
                update(Ingestion)
                .where(Ingestion.id == ingestion_id)
                .values(
                    status="running",
                    started_at=utcnow(),
                    flow_run_id=flow_run_id,
                    error=None,
                    attempts=Ingestion.attempts + 1,
                )
            )

    def list_ingestions(
        self, *, limit: int = 100, status: str | None = None, since: datetime | None = None
    ) -> list[Ingestion]:
        """Newest ingestions first."""
        query = select(Ingestion).order_by(Ingestion.received_at.desc()).limit(limit)
        if status:
            query = query.where(Ingestion.status == status)
        if since:
            query = query.where(Ingestion.received_at >= since)
        with self.session() as s:
            return list(s.scalars(query))

    def record_result(
        self,
        ingestion_id: str,
        *,
        status: str,
        report: dict[str, Any],
        rule_outcomes: Sequence[Mapping[str, Any]],
        metrics: dict[str, float],
        objects: Sequence[Mapping[str, Any]],
    ) -> None:
        """Store an ingestion's outcome, rule counts, metrics and lineage in one transaction (re-runs replace)."""
        counts = {
            k: report.get(k) for k in ("rows_received", "rows_accepted", "rows_quarantined", "rows_duplicate")
        }
        with self.session() as s:
            s.execute(delete(RuleOutcome).where(RuleOutcome.ingestion_id == ingestion_id))
            s.execute(delete(QualityMetric).where(QualityMetric.ingestion_id == ingestion_id))
            s.execute(delete(ZoneObject).where(ZoneObject.ingestion_id == ingestion_id))
            if rule_outcomes:
                s.execute(insert(RuleOutcome), [dict(o, ingestion_id=ingestion_id) for o in rule_outcomes])
            if metrics:
                s.execute(
                    insert(QualityMetric),
                    [
                        {"ingestion_id": ingestion_id, "name": k, "value": float(v)}
                        for k, v in metrics.items()
                    ],
                )
            if objects:
                s.execute(insert(ZoneObject), [dict(o, ingestion_id=ingestion_id) for o in objects])
            s.execute(
                update(Ingestion)
                .where(Ingestion.id == ingestion_id)
                .values(
                    status=status, report=report, finished_at=utcnow(), error=report.get("reason"), **counts
                )
            )

    def fail(self, ingestion_id: str, status: str, error: str) -> None:
        """Record that an ingestion failed or was rejected, with a one-line reason."""
        self.update(ingestion_id, status=status, error=error[:2000], finished_at=utcnow())

    # ---- quality ----------------------------------------------------------------------------------------

    def rule_outcomes(self, ingestion_id: str) -> list[RuleOutcome]:
        with self.session() as s:
            return list(s.scalars(select(RuleOutcome).where(RuleOutcome.ingestion_id == ingestion_id)))

    def metrics(self, ingestion_id: str) -> dict[str, float]:
        with self.session() as s:
            rows = s.scalars(select(QualityMetric).where(QualityMetric.ingestion_id == ingestion_id))
            return {m.name: m.value for m in rows}

    def zone_objects(
        self, ingestion_id: str | None = None, zone: str | None = None, include_archived: bool = False
    ) -> list[ZoneObject]:
        """Lineage rows, optionally for one ingestion or zone."""
        query = select(ZoneObject).order_by(ZoneObject.id)
        if ingestion_id:
            query = query.where(ZoneObject.ingestion_id == ingestion_id)
        if zone:
            query = query.where(ZoneObject.zone == zone)
        if not include_archived:
            query = query.where(ZoneObject.archived_at.is_(None))
        with self.session() as s:
            return list(s.scalars(query))

    def add_zone_objects(self, ingestion_id: str, objects: Sequence[Mapping[str, Any]]) -> None:
        """Record objects written for an ingestion after its run (predictions scored later, for instance)."""
        with self.session() as s:
            s.execute(insert(ZoneObject), [dict(o, ingestion_id=ingestion_id) for o in objects])

    def purgeable_objects(self, cutoff: datetime) -> list[ZoneObject]:
        """Archived zone objects written before `cutoff` and not yet deleted."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(ZoneObject)
                    .where(
                        ZoneObject.archived_at.is_not(None),
                        ZoneObject.purged_at.is_(None),
                        ZoneObject.created_at < cutoff,
                    )
                    .order_by(ZoneObject.id)
                )
            )

    def mark_purged(self, object_id: int) -> None:
        """Record that an archived zone object was deleted for good."""
        with self.session() as s:
            s.execute(update(ZoneObject).where(ZoneObject.id == object_id).values(purged_at=utcnow()))

    def mark_archived(self, object_id: int, archive_key: str) -> None:
        """Record that a zone object now lives at its archive key."""
        with self.session() as s:
            s.execute(
                update(ZoneObject)
                .where(ZoneObject.id == object_id)
                .values(key=archive_key, archived_at=utcnow())
            )

    # ---- row identities ---------------------------------------------------------------------------------

    def claim_identities(self, ingestion_id: str, rows: Sequence[tuple[str, str]]) -> dict[str, str]:
        """Record (identity, content_hash) rows as stored by this ingestion; return those other ingestions hold.

        The return maps identity → the content hash stored earlier. Set-based SQL does the matching, so a
        million rows cost one bulk load and two statements; inserting in key order keeps the index writes
        sequential (2x faster). A re-run of the same ingestion claims nothing new.
        """
        if not rows:
            return {}
        param = "?" if self.engine.dialect.name == "sqlite" else "%s"
        candidates = pl.DataFrame(rows, schema=["identity", "content_hash"], orient="row")
        with self.engine.begin() as connection:
            load_temporary(
                connection,
                "candidate_ids",
                candidates,
                {"identity": "VARCHAR(32)", "content_hash": "VARCHAR(32)"},
            )
            try:
                # S608 below: `param` is the driver's placeholder ("?" or "%s"); the id goes as a parameter
                held = connection.exec_driver_sql(
                    "SELECT r.identity, r.content_hash FROM row_identities r JOIN candidate_ids c "  # noqa: S608
                    f"ON c.identity = r.identity WHERE r.ingestion_id <> {param}",
                    (ingestion_id,),
                )
                earlier = {identity: digest for identity, digest in held}
                connection.exec_driver_sql(
                    "INSERT INTO row_identities (identity, content_hash, ingestion_id) "  # noqa: S608
                    f"SELECT c.identity, c.content_hash, {param} FROM candidate_ids c WHERE NOT EXISTS "
                    "(SELECT 1 FROM row_identities r WHERE r.identity = c.identity) ORDER BY c.identity",
                    (ingestion_id,),
                )
                return earlier
            finally:
                connection.exec_driver_sql("DROP TABLE candidate_ids")

    def count_identities(self, ingestion_id: str | None = None) -> int:
        query = select(func.count()).select_from(RowIdentity)
        if ingestion_id:
            query = query.where(RowIdentity.ingestion_id == ingestion_id)
        with self.session() as s:
            return int(s.scalar(query) or 0)

    # ---- model decisions --------------------------------------------------------------------------------

    def record_decision(self, **fields: Any) -> ModelDecision:
        """Store one retrain decision (what fired, why, what it produced)."""
        with self.session() as s:
            row = ModelDecision(**fields)
            s.add(row)
        return row

    def decisions(self, limit: int = 50) -> list[ModelDecision]:
        """Newest retrain decisions first."""
        with self.session() as s:
            return list(s.scalars(select(ModelDecision).order_by(ModelDecision.id.desc()).limit(limit)))

    # ---- quarantine review ------------------------------------------------------------------------------

    def record_reviews(
        self,
        ingestion_id: str,
        rows: Sequence[int],
        *,
        decision: str,
        reviewer: str,
        note: str | None,
        objects: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Record decisions on held rows and the zone objects they produced, together; a row is decided once."""
        key = next((o["key"] for o in objects if o["zone"] == "validated"), None)
        with self.session() as s:
            s.add_all(
                Review(
                    ingestion_id=ingestion_id,
                    source_row=int(r),
                    decision=decision,
                    reviewer=reviewer,
                    note=note,
                    object_key=key,
                )
                for r in rows
            )
            if objects:
                s.execute(insert(ZoneObject), [dict(o, ingestion_id=ingestion_id) for o in objects])

    def reviews(self, ingestion_id: str | None = None) -> list[Review]:
        """Review decisions, newest first."""
        query = select(Review).order_by(Review.reviewed_at.desc())
        if ingestion_id:
            query = query.where(Review.ingestion_id == ingestion_id)
        with self.session() as s:
            return list(s.scalars(query))
