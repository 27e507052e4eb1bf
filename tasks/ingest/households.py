"""Households over time: visits per household and round, the household registry, and the progress queries.

A visit is recorded `pending` while its ingestion runs and becomes `final` when the ingestion completes;
only final visits that nothing superseded are counted. Every write is set-based SQL (a temporary table and
INSERT … SELECT), so a million-row ingestion costs a bulk load and a few statements, not a million round trips.
The registry holds one row per household, rebuilt from its final visits in the same transaction that
changes them, so a crash and a re-run leave it exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypedDict

import polars as pl
from sqlalchemy import Connection, DateTime, Integer, String, bindparam, text

from tasks.ingest import contract
from tasks.ingest.identity import IDENTITY
from tasks.ingest.rounds import ROUND_COLUMN, submitted_instant, validate_round
from tasks.ingest.rules import PSEUDONYM
from tasks.platform.catalog.registry_models import HouseholdRegistry, Visit
from tasks.platform.catalog.repo import Catalog, load_temporary
from tasks.platform.errors import BadInput

__all__ = [  # the model classes too: importing this module puts their tables on the catalog's metadata
    "ApprovedVisits",
    "FinaliseOutcome",
    "HouseholdRegistry",
    "Progress",
    "RoundRow",
    "Visit",
    "VisitOutcome",
    "current_round",
    "discard_ingestion",
    "edited_visits",
    "finalise_ingestion",
    "followups",
    "latest_visits",
    "ingestion_rounds",
    "reassign_round",
    "rebuild_registry",
    "record_approved",
    "record_final_visits",
    "record_visits",
    "repeated_in_round",
    "rounds",
    "supersede",
    "transitions",
    "update_predictions",
    "visit_in_round",
]

STATUS_ORDER: Final = ("Severely Struggling", "Struggling", "At Risk", "On Track")  # worst first
ANSWERS: Final = ("household_size", "agriculture_land", "vsla_profits_usd", contract.TARGET)
REPEATED_RULE: Final = "household.repeated_in_round"

# What a visit keeps, and its type in the temporary table the rows are bulk-loaded into.
_INCOMING: Final[dict[str, str]] = {
    "household": "TEXT",
    "survey_round": "TEXT",
    "row_identity": "TEXT",
    "collected_at": "TEXT",  # UTC text in the dialect's own datetime format; null: the landing time
    "district": "TEXT",
    "cluster": "TEXT",
    "village": "TEXT",
    "observed_status": "TEXT",
    "p_vulnerable": "DOUBLE PRECISION",
    "risk_band": "TEXT",
    "model_version": "TEXT",
    "predicted_status": "TEXT",
    "expected_per_day": "DOUBLE PRECISION",
    "source_row": "BIGINT",
    "household_size": "BIGINT",
    "agriculture_land": "DOUBLE PRECISION",
    "vsla_profits_usd": "DOUBLE PRECISION",
    contract.TARGET: "DOUBLE PRECISION",
    "replaces_identity": "TEXT",  # an API edit: the row identity of the visit it replaces
}
_POLARS_TYPES: Final[dict[str, pl.DataType]] = {
    "TEXT": pl.String(),
    "DOUBLE PRECISION": pl.Float64(),
    "BIGINT": pl.Int64(),
}
_STORED: Final = tuple(c for c in _INCOMING if c not in ("collected_at", "replaces_identity"))
_VISIT_COLUMNS: Final = (
    "visit_id",
    "household",
    "survey_round",
    "ingestion_id",
    "row_identity",
    "collected_at",
    "district",
    "cluster",
    "village",
    "observed_status",
    "p_vulnerable",
    "risk_band",
    "model_version",
    "predicted_status",
    "expected_per_day",
    "source_row",
    *ANSWERS,
)
_VISIT_SCHEMA: Final[dict[str, pl.DataType]] = {
    name: {
        "visit_id": pl.Int64(),
        "collected_at": pl.Datetime("us", "UTC"),
        "p_vulnerable": pl.Float64(),
        "expected_per_day": pl.Float64(),
        "source_row": pl.Int64(),
        "household_size": pl.Int64(),
        "agriculture_land": pl.Float64(),
        "vsla_profits_usd": pl.Float64(),
        contract.TARGET: pl.Float64(),
    }.get(name, pl.String())
    for name in _VISIT_COLUMNS
}
_LIVE = "v.state = 'final' AND v.superseded_by IS NULL"


class UnknownRound(BadInput, ValueError):
    """A round was asked for that no final visit carries, or too few rounds exist to compare."""


class RoundCollision(BadInput, ValueError):
    """A round cannot be reassigned: a household would then have two live visits in the target round."""


class UnknownIngestion(BadInput, ValueError):
    """No ingestion has this id."""


class RoundRow(TypedDict):
    """One survey round: households with a counted visit, visits recorded (superseded ones too), ingestions."""

    round: str
    households: int
    visits: int
    ingestions: int
    first_collected_at: datetime


class LinkedVisit(TypedDict):
    """A row recorded while another ingestion held a pending visit of the same household and round."""

    row_identity: str
    earlier_visit_id: int
    earlier_ingestion_id: str


@dataclass(frozen=True)
class VisitOutcome:
    """What `record_visits` stored: pending visits, rows held as repeats of a final visit, linked pairs."""

    recorded: int
    held: frozenset[str] = frozenset()  # row identities: same household and round as another final visit
    linked: list[LinkedVisit] = field(default_factory=list)


@dataclass(frozen=True)
class FinaliseOutcome:
    """What `finalise_ingestion` made final, and the rows that lost a race to another ingestion's visit."""

    finalised: int
    households: int
    repeated: frozenset[str] = frozenset()  # row identities the caller holds as household.repeated_in_round


@dataclass(frozen=True)
class ApprovedVisits:
    """What `record_approved` did: new final visits, visits replaced (superseded), rows already visits."""

    recorded: int = 0
    superseded: int = 0
    unchanged: int = 0
    skipped: int = 0  # no household, round or place; or their identity is another ingestion's visit


HouseholdCounts = TypedDict("HouseholdCounts", {"from": int, "to": int, "both": int})


class Progress(TypedDict):
    """Households of two rounds and how their observed status and risk band moved (each household once)."""

    rounds: list[str]
    households: HouseholdCounts
    transitions: dict[str, dict[str, int]]
    risk_transitions: dict[str, dict[str, int]]
    improved: int
    worsened: int
    unchanged: int


# ---- frames in ---------------------------------------------------------------------------------------------


def _first_present(frame: pl.DataFrame, *names: str) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def _sql_instant(instant: pl.Expr, dialect: str) -> pl.Expr:
    """UTC text as the catalog stores it: SQLAlchemy's SQLite format, or an ISO literal PostgreSQL casts."""
    utc = instant.dt.convert_time_zone("UTC")
    return utc.dt.strftime(
        "%Y-%m-%d %H:%M:%S%.6f+00:00" if dialect == "postgresql" else "%Y-%m-%d %H:%M:%S%.6f"
    )


def _collected_at(frame: pl.DataFrame) -> pl.Expr:
    """The instant a row was collected: `collected_at`, else its parsed `submitted_at`, else null."""
    if "collected_at" in frame.columns and isinstance(frame.schema["collected_at"], pl.Datetime):
        stamp = frame.schema["collected_at"]
        column = pl.col("collected_at")
        return column if getattr(stamp, "time_zone", None) else column.dt.replace_time_zone("UTC")
    name = _first_present(frame, "collected_at", "submitted_at")
    if name is None:
        return pl.lit(None, pl.Datetime("us", "UTC"))
    return submitted_instant(name)


def visit_frame(frame: pl.DataFrame, dialect: str = "sqlite") -> pl.DataFrame:
    """Accepted rows as visits: the registry's columns, one row per row identity, absent answers as nulls.

    Takes the names of any stage: `household_pseudonym` or `household`, `_identity` or `row_identity`,
    `progress_status` or `observed_status` (computed from the target when neither is there).
    """
    aliases: dict[str, tuple[str, ...]] = {
        "household": (PSEUDONYM, "household"),
        "survey_round": (ROUND_COLUMN,),
        "row_identity": ("row_identity", IDENTITY),
        "observed_status": ("observed_status", "progress_status"),
        "source_row": ("source_row", "_row"),
    }
    columns: list[pl.Expr] = []
    for name, sql_type in _INCOMING.items():
        dtype = _POLARS_TYPES[sql_type]
        source = _first_present(frame, *aliases.get(name, (name,)))
        if name == "collected_at":
            columns.append(_sql_instant(_collected_at(frame), dialect).alias(name))
        elif source is not None:
            columns.append(pl.col(source).cast(dtype).alias(name))
        elif name == "observed_status" and contract.TARGET in frame.columns:
            columns.append(contract.progress_status_expr(pl.col(contract.TARGET)).alias(name))
        else:
            columns.append(pl.lit(None, dtype).alias(name))
    for required in ("household", "survey_round", "row_identity"):
        if _first_present(frame, *aliases[required]) is None:
            raise ValueError(f"visits need a {required} column ({' or '.join(aliases[required])})")
    return frame.select(columns).unique("row_identity", keep="first", maintain_order=True)


# ---- bulk load and locks -----------------------------------------------------------------------------------


def _take_write_lock(connection: Connection) -> None:
    """Serialise registry writers before their first read, so what they check is what they change.

    PostgreSQL: a table lock that conflicts with itself and not with readers. SQLite: a write statement that
    changes nothing takes the database's write lock now; a read first would pin a snapshot that a concurrent
    writer makes stale (SQLITE_BUSY_SNAPSHOT when this transaction then writes).
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE visits IN SHARE ROW EXCLUSIVE MODE")
    else:
        connection.exec_driver_sql("UPDATE visits SET state = state WHERE 0 = 1")


def _collected_sql(connection: Connection) -> str:
    return (
        "CAST(i.collected_at AS TIMESTAMPTZ)" if connection.dialect.name == "postgresql" else "i.collected_at"
    )


# ---- registry ----------------------------------------------------------------------------------------------

_REGISTRY_COLUMNS: Final = (
    "household, first_round, last_round, first_collected_at, last_collected_at, visits, last_visit_id, "
    "district, cluster, village, first_district, first_cluster, first_village, "
    "observed_status, risk_band, model_version, p_vulnerable"
)


def _first(column: str) -> str:
    return f"MAX(CASE WHEN seq = 1 THEN {column} END)"


def _last(column: str) -> str:
    return f"MAX(CASE WHEN seq = n THEN {column} END)"


def _rebuild_sql(scope: str) -> str:
    """Registry rows of the households `scope` selects, from their final visits that nothing superseded.

    A round's place in time is its earliest final visit (one seek on ix_visits_round_start per round);
    one window numbers each household's visits in that order, and conditional aggregates pick the first and
    the latest in a single grouped pass (a self-join of the ranked visits cost ~2x on SQLite).
    """
    return f"""
        INSERT INTO household_registry ({_REGISTRY_COLUMNS})
        WITH live AS (
            SELECT v.id, v.household, v.survey_round, v.collected_at, v.district, v.cluster, v.village,
                   v.observed_status, v.risk_band, v.model_version, v.p_vulnerable
            FROM visits v WHERE {_LIVE} {scope}
        ), starts AS (
            SELECT r.survey_round,
                   (SELECT MIN(x.collected_at) FROM visits x
                    WHERE x.survey_round = r.survey_round AND x.state = 'final') AS started
            FROM (SELECT DISTINCT survey_round FROM live) r
        ), ranked AS (
            SELECT l.*,
                   ROW_NUMBER() OVER (
                       PARTITION BY l.household ORDER BY s.started, l.survey_round, l.collected_at, l.id
                   ) AS seq,
                   COUNT(*) OVER (PARTITION BY l.household) AS n
            FROM live l JOIN starts s ON s.survey_round = l.survey_round
        )
        SELECT household, {_first("survey_round")}, {_last("survey_round")},
               {_first("collected_at")}, {_last("collected_at")}, MAX(n), {_last("id")},
               {_last("district")}, {_last("cluster")}, {_last("village")},
               {_first("district")}, {_first("cluster")}, {_first("village")},
               {_last("observed_status")}, {_last("risk_band")}, {_last("model_version")},
               {_last("p_vulnerable")}
        FROM ranked GROUP BY household
    """  # noqa: S608 - `scope` is one of this module's fixed subqueries; values go as parameters


_OF_INGESTION = "AND v.household IN (SELECT household FROM visits WHERE ingestion_id = :ingestion_id)"
_OF_SCOPE = "AND v.household IN (SELECT household FROM registry_scope)"
_OF_PREDICTIONS = (
    "AND v.household IN (SELECT w.household FROM visits w JOIN incoming_predictions p "
    "ON p.row_identity = w.row_identity)"
)


def _rebuild(connection: Connection, scope: str, params: dict[str, Any]) -> None:
    """Replace the registry rows of the households `scope` selects (all when empty) on this connection."""
    where = scope.replace("v.household", "household", 1) if scope else ""
    connection.execute(text(f"DELETE FROM household_registry WHERE 1 = 1 {where}"), params)  # noqa: S608
    connection.execute(text(_rebuild_sql(scope)), params)


def rebuild_registry(catalog: Catalog, households: Iterable[str] | None = None) -> int:
    """Recompute registry rows from final, non-superseded visits (every household when None); return rows."""
    with catalog.write_lock, catalog.engine.begin() as connection:
        _take_write_lock(connection)
        if households is None:
            _rebuild(connection, "", {})
        else:
            scope = pl.DataFrame({"household": list(households)}, schema={"household": pl.String})
            load_temporary(connection, "registry_scope", scope.unique(), {"household": "TEXT"})
            _rebuild(connection, _OF_SCOPE, {})
            connection.exec_driver_sql("DROP TABLE registry_scope")
        return int(connection.execute(text("SELECT COUNT(*) FROM household_registry")).scalar_one())


# ---- writes ------------------------------------------------------------------------------------------------

_COLLIDES_WITH = """
    v.household = i.household AND v.survey_round = i.survey_round AND v.ingestion_id <> :ingestion_id
    AND v.superseded_by IS NULL AND (i.replaces_identity IS NULL OR v.row_identity <> i.replaces_identity)
"""


def repeated_in_round(catalog: Catalog, ingestion_id: str, frame: pl.DataFrame) -> pl.Series:
    """Per row: does another ingestion already hold a final or pending visit of its household and round?

    An API edit (a `replaces_identity` naming the visit it replaces) does not collide with that visit.
    """
    household = _first_present(frame, PSEUDONYM, "household")
    if household is None or ROUND_COLUMN not in frame.columns:
        raise ValueError(f"repeated_in_round needs {PSEUDONYM} and {ROUND_COLUMN} columns")
    replaces = pl.col("replaces_identity") if "replaces_identity" in frame.columns else pl.lit(None)
    keys = frame.select(
        pl.col(household).cast(pl.String).alias("household"),
        pl.col(ROUND_COLUMN).cast(pl.String).alias("survey_round"),
        replaces.cast(pl.String).alias("replaces_identity"),
    )
    types = {"household": "TEXT", "survey_round": "TEXT", "replaces_identity": "TEXT"}
    with catalog.engine.begin() as connection:
        load_temporary(connection, "incoming_keys", keys.unique(), types)
        found = connection.execute(
            text(
                "SELECT i.household, i.survey_round, i.replaces_identity FROM incoming_keys i "  # noqa: S608
                f"WHERE EXISTS (SELECT 1 FROM visits v WHERE {_COLLIDES_WITH})"
            ),
            {"ingestion_id": ingestion_id},
        ).all()
        connection.exec_driver_sql("DROP TABLE incoming_keys")
    colliding = pl.DataFrame(
        [tuple(row) for row in found], schema=dict.fromkeys(types, pl.String), orient="row"
    ).with_columns(pl.lit(True).alias("repeated_in_round"))
    flags = keys.join(colliding, on=list(types), how="left", nulls_equal=True, maintain_order="left")
    return flags.get_column("repeated_in_round").fill_null(False)


def record_visits(catalog: Catalog, ingestion_id: str, visits: pl.DataFrame) -> VisitOutcome:
    """Store an ingestion's accepted rows as pending visits (a re-run replaces its own pending ones).

    Rows whose household and round already have a final visit of another ingestion are not stored: they are
    returned as `held` (the caller holds them as household.repeated_in_round). Rows whose household and round
    another ingestion holds pending are stored linked to that visit; the first of the two to be finalised
    stays. A row already stored as a visit (a re-run after finalising) is left as it is.
    """
    dialect = catalog.engine.dialect.name
    incoming = visit_frame(visits, dialect)
    params = {"ingestion_id": ingestion_id}
    with catalog.write_lock, catalog.engine.begin() as connection:
        _take_write_lock(connection)
        load_temporary(connection, "incoming_visits", incoming, _INCOMING)
        connection.execute(
            text("DELETE FROM visits WHERE ingestion_id = :ingestion_id AND state = 'pending'"), params
        )
        held = connection.execute(
            text(
                "SELECT DISTINCT i.row_identity FROM incoming_visits i JOIN visits v "  # noqa: S608
                f"ON {_COLLIDES_WITH} WHERE v.state = 'final'"
            ),
            params,
        ).scalars()
        held_identities = frozenset(held)
        stored = ", ".join(_STORED)
        chosen = ", ".join(f"i.{c}" for c in _STORED)
        # ordered by household: the (household, survey_round) index is written in key order (measured
        # 1.6x faster than the frame's order for 1M rows on SQLite)
        recorded = connection.execute(
            text(
                f"INSERT INTO visits ({stored}, ingestion_id, collected_at, state, linked_visit_id, "  # noqa: S608
                f"replaces_visit_id) SELECT {chosen}, :ingestion_id, "
                f"COALESCE({_collected_sql(connection)}, g.received_at), 'pending', "
                "(SELECT MIN(v.id) FROM visits v WHERE v.state = 'pending' AND "
                f"{_COLLIDES_WITH}), "
                "(SELECT r.id FROM visits r WHERE r.row_identity = i.replaces_identity) "
                "FROM incoming_visits i JOIN ingestions g ON g.id = :ingestion_id "
                f"WHERE NOT EXISTS (SELECT 1 FROM visits v WHERE v.state = 'final' AND {_COLLIDES_WITH}) "
                "AND NOT EXISTS (SELECT 1 FROM visits s WHERE s.row_identity = i.row_identity) "
                "ORDER BY i.household, i.survey_round"
            ),
            params,
        ).rowcount
        linked = connection.execute(
            text(
                "SELECT n.row_identity, n.linked_visit_id, e.ingestion_id FROM visits n "
                "JOIN visits e ON e.id = n.linked_visit_id "
                "WHERE n.ingestion_id = :ingestion_id AND n.state = 'pending' ORDER BY n.row_identity"
            ),
            params,
        ).all()
        connection.exec_driver_sql("DROP TABLE incoming_visits")
    return VisitOutcome(
        recorded=int(recorded),
        held=held_identities,
        linked=[
            LinkedVisit(row_identity=r, earlier_visit_id=int(v), earlier_ingestion_id=e) for r, v, e in linked
        ],
    )


def finalise_ingestion(catalog: Catalog, ingestion_id: str) -> FinaliseOutcome:
    """Make an ingestion's pending visits final and rebuild its households' registry rows, in one transaction.

    A pending visit whose household and round another ingestion finalised first is removed and returned as
    `repeated`; an API edit marks the visit it replaces superseded.
    """
    params: dict[str, Any] = {"ingestion_id": ingestion_id}
    loser = (
        "v.household = visits.household AND v.survey_round = visits.survey_round "
        "AND v.ingestion_id <> :ingestion_id AND v.superseded_by IS NULL "
        "AND (visits.replaces_visit_id IS NULL OR v.id <> visits.replaces_visit_id)"
    )
    with catalog.write_lock, catalog.engine.begin() as connection:
        _take_write_lock(connection)
        connection.execute(
            text(
                "UPDATE visits SET state = 'repeated' WHERE ingestion_id = :ingestion_id AND state = 'pending' "  # noqa: S608
                f"AND EXISTS (SELECT 1 FROM visits v WHERE v.state = 'final' AND {loser})"
            ),
            params,
        )
        repeated = frozenset(
            connection.execute(
                text(
                    "SELECT row_identity FROM visits WHERE ingestion_id = :ingestion_id AND state = 'repeated'"
                ),
                params,
            ).scalars()
        )
        connection.execute(
            text("DELETE FROM visits WHERE ingestion_id = :ingestion_id AND state = 'repeated'"), params
        )
        connection.execute(
            text(
                "UPDATE visits SET superseded_by = (SELECT MIN(n.id) FROM visits n WHERE "
                "n.replaces_visit_id = visits.id AND n.ingestion_id = :ingestion_id AND n.state = 'pending'), "
                "superseded_at = :now WHERE superseded_by IS NULL AND id IN (SELECT replaces_visit_id "
                "FROM visits WHERE ingestion_id = :ingestion_id AND state = 'pending')"
            ).bindparams(bindparam("now", type_=DateTime(timezone=True))),
            {**params, "now": datetime.now(UTC)},
        )
        finalised = connection.execute(
            text(
                "UPDATE visits SET state = 'final' WHERE ingestion_id = :ingestion_id AND state = 'pending'"
            ),
            params,
        ).rowcount
        _rebuild(connection, _OF_INGESTION, params)
        households = connection.execute(
            text("SELECT COUNT(DISTINCT household) FROM visits WHERE ingestion_id = :ingestion_id"), params
        ).scalar_one()
    return FinaliseOutcome(finalised=int(finalised), households=int(households), repeated=repeated)


def discard_ingestion(catalog: Catalog, ingestion_id: str) -> int:
    """Delete an ingestion's pending visits (its run failed or was abandoned); return how many."""
    with catalog.write_lock, catalog.engine.begin() as connection:
        deleted = connection.execute(
            text("DELETE FROM visits WHERE ingestion_id = :ingestion_id AND state = 'pending'"),
            {"ingestion_id": ingestion_id},
        ).rowcount
    return int(deleted)


def supersede(catalog: Catalog, old_visit_id: int, new_row: pl.DataFrame) -> int:
    """Review approval: store `new_row` as a final visit replacing `old_visit_id` (kept, marked superseded).

    `new_row` is one accepted row with its `ingestion_id`; it must be of the same household and round. A
    repeated call with the same row returns the visit it stored the first time.
    """
    if new_row.height != 1 or "ingestion_id" not in new_row.columns:
        raise ValueError("supersede takes exactly one row with its ingestion_id")
    ingestion_id = str(new_row["ingestion_id"][0])
    incoming = visit_frame(new_row, catalog.engine.dialect.name)
    row = incoming.row(0, named=True)
    with catalog.write_lock, catalog.engine.begin() as connection:
        _take_write_lock(connection)
        old = connection.execute(
            text("SELECT household, survey_round, state, superseded_by FROM visits WHERE id = :id"),
            {"id": old_visit_id},
        ).one_or_none()
        if old is None or old.state != "final":
            raise ValueError(f"no final visit {old_visit_id} to supersede")
        existing = connection.execute(
            text("SELECT id FROM visits WHERE row_identity = :row_identity"),
            {"row_identity": row["row_identity"]},
        ).scalar_one_or_none()
        if existing is not None and existing == old.superseded_by:
            return int(existing)
        if existing is not None or old.superseded_by is not None:
            raise ValueError(f"visit {old_visit_id} was already superseded, or this row is already a visit")
        if (row["household"], row["survey_round"]) != (old.household, old.survey_round):
            raise ValueError("a visit is superseded only by a row of the same household and round")
        load_temporary(connection, "incoming_visits", incoming, _INCOMING)
        stored = ", ".join(_STORED)
        chosen = ", ".join(f"i.{c}" for c in _STORED)
        new_id = connection.execute(
            text(
                f"INSERT INTO visits ({stored}, ingestion_id, collected_at, state) "  # noqa: S608
                f"SELECT {chosen}, :ingestion_id, COALESCE({_collected_sql(connection)}, g.received_at), "
                "'final' FROM incoming_visits i JOIN ingestions g ON g.id = :ingestion_id RETURNING id"
            ),
            {"ingestion_id": ingestion_id},
        ).scalar_one()
        connection.exec_driver_sql("DROP TABLE incoming_visits")
        connection.execute(
            text(
                "UPDATE visits SET superseded_by = :new_id, superseded_at = :now WHERE id = :old_id"
            ).bindparams(bindparam("now", type_=DateTime(timezone=True))),
            {"new_id": new_id, "now": datetime.now(UTC), "old_id": old_visit_id},
        )
        _rebuild(connection, "AND v.household = :household", {"household": old.household})
    return int(new_id)


def update_predictions(catalog: Catalog, predictions: pl.DataFrame) -> int:
    """Set p_vulnerable, risk band and model version of visits by row identity; refresh the registry's latest."""
    identity = _first_present(predictions, "row_identity", IDENTITY)
    if identity is None:
        raise ValueError("predictions need a row_identity column")
    types = {
        "row_identity": "TEXT",
        "p_vulnerable": "DOUBLE PRECISION",
        "risk_band": "TEXT",
        "model_version": "TEXT",
        "predicted_status": "TEXT",
        "expected_per_day": "DOUBLE PRECISION",
    }
    rows = predictions.select(
        pl.col(identity).cast(pl.String).alias("row_identity"),
        pl.col("p_vulnerable").cast(pl.Float64),
        pl.col("risk_band").cast(pl.String),
        pl.col("model_version").cast(pl.String),
        *(
            (pl.col(c) if c in predictions.columns else pl.lit(None)).cast(dtype).alias(c)
            for c, dtype in (("predicted_status", pl.String), ("expected_per_day", pl.Float64))
        ),
    ).unique("row_identity", keep="last", maintain_order=True)
    with catalog.write_lock, catalog.engine.begin() as connection:
        _take_write_lock(connection)
        load_temporary(connection, "incoming_predictions", rows, types)
        updated = connection.execute(
            text(
                "UPDATE visits SET p_vulnerable = p.p_vulnerable, risk_band = p.risk_band, "
                "model_version = p.model_version, predicted_status = p.predicted_status, "
                "expected_per_day = p.expected_per_day FROM incoming_predictions p "
                "WHERE p.row_identity = visits.row_identity"
            )
        ).rowcount
        _rebuild(connection, _OF_PREDICTIONS, {})
        connection.exec_driver_sql("DROP TABLE incoming_predictions")
    return int(updated)


def record_final_visits(catalog: Catalog, ingestion_id: str, visits: pl.DataFrame) -> int:
    """Store rows as final visits at once (rows already visits are left as they are); rebuild their households.

    For rows accepted after their ingestion completed (a review approval): no pending stage, no collision
    check; the caller decides which rows replace an earlier visit (`supersede`) and passes the others.
    """
    incoming = visit_frame(visits, catalog.engine.dialect.name)
    params = {"ingestion_id": ingestion_id}
    with catalog.write_lock, catalog.engine.begin() as connection:
        _take_write_lock(connection)
        load_temporary(connection, "incoming_visits", incoming, _INCOMING)
        stored = ", ".join(_STORED)
        chosen = ", ".join(f"i.{c}" for c in _STORED)
        recorded = connection.execute(
            text(
                f"INSERT INTO visits ({stored}, ingestion_id, collected_at, state) "  # noqa: S608
                f"SELECT {chosen}, :ingestion_id, COALESCE({_collected_sql(connection)}, g.received_at), "
                "'final' FROM incoming_visits i JOIN ingestions g ON g.id = :ingestion_id "
                "WHERE NOT EXISTS (SELECT 1 FROM visits s WHERE s.row_identity = i.row_identity) "
                "ORDER BY i.household, i.survey_round"
            ),
            params,
        ).rowcount
        _rebuild(connection, "AND v.household IN (SELECT household FROM incoming_visits)", {})
        connection.exec_driver_sql("DROP TABLE incoming_visits")
    return int(recorded)


def _placed(frame: pl.DataFrame) -> pl.Expr:
    """Rows a visit can be made of: a household, a round and a place (district, cluster, village)."""
    household = _first_present(frame, PSEUDONYM, "household") or PSEUDONYM
    needed = [household, ROUND_COLUMN, "district", "cluster", "village"]
    if any(name not in frame.columns for name in needed):
        return pl.lit(False)
    return pl.all_horizontal(pl.col(needed).is_not_null())


def record_approved(catalog: Catalog, ingestion_id: str, rows: pl.DataFrame) -> ApprovedVisits:
    """Review approval: rows become final visits, replacing a live visit of another ingestion in their round.

    A row whose household has such a visit supersedes it (`supersede`); others are new final visits; rows
    already visits change nothing (a retried approval).
    Reviews are decided a few rows at a time, so rows that replace a visit go one by one through `supersede`.
    """
    identity = _first_present(rows, "row_identity", IDENTITY)
    if identity is None:
        raise ValueError("approved rows need a row_identity column")
    placed = rows.filter(_placed(rows))
    if placed.height == 0:
        return ApprovedVisits(skipped=rows.height)
    keys = visit_frame(placed, catalog.engine.dialect.name).select(
        "household", "survey_round", "row_identity"
    )
    with catalog.engine.begin() as connection:
        load_temporary(connection, "approved_keys", keys, dict.fromkeys(keys.columns, "TEXT"))
        # a row already a visit: of this ingestion, an earlier attempt of this approval stored it; of another,
        # the same instance id was sent again with other answers, and one identity is one visit: left as is
        existing: dict[str, bool] = {
            str(r): bool(ours)
            for r, ours in connection.execute(
                text(
                    "SELECT a.row_identity, v.ingestion_id = :ingestion_id FROM approved_keys a "
                    "JOIN visits v ON v.row_identity = a.row_identity"
                ),
                {"ingestion_id": ingestion_id},
            ).all()
        }
        # the latest live visit of another ingestion: the one the row was held against
        found = connection.execute(
            text(
                "SELECT a.row_identity, (SELECT v.id FROM visits v WHERE v.household = a.household "  # noqa: S608
                f"AND v.survey_round = a.survey_round AND v.ingestion_id <> :ingestion_id AND {_LIVE} "
                "ORDER BY v.collected_at DESC, v.id DESC LIMIT 1) FROM approved_keys a"
            ),
            {"ingestion_id": ingestion_id},
        ).all()
        earlier: dict[str, int | None] = {str(r): v for r, v in found}
        connection.exec_driver_sql("DROP TABLE approved_keys")
    fresh: list[str] = []
    replaced: set[int] = set()
    for row_identity in keys["row_identity"].to_list():
        if row_identity in existing:
            continue
        old = earlier.get(row_identity)
        if old is None or int(old) in replaced:  # two approved rows of one household: the first replaces
            fresh.append(row_identity)
            continue
        row = placed.filter(pl.col(identity).cast(pl.String) == row_identity).head(1)
        supersede(catalog, int(old), row.with_columns(pl.lit(ingestion_id).alias("ingestion_id")))
        replaced.add(int(old))
    recorded = 0
    if fresh:
        recorded = record_final_visits(
            catalog, ingestion_id, placed.filter(pl.col(identity).cast(pl.String).is_in(fresh))
        )
    return ApprovedVisits(
        recorded=recorded,
        superseded=len(replaced),
        unchanged=sum(1 for ours in existing.values() if ours),
        skipped=rows.height - placed.height + sum(1 for ours in existing.values() if not ours),
    )


def ingestion_rounds(catalog: Catalog, ingestion_id: str) -> list[str]:
    """The rounds an ingestion's visits carry, in label order."""
    with catalog.engine.connect() as connection:
        found = connection.execute(
            text("SELECT DISTINCT survey_round FROM visits WHERE ingestion_id = :ingestion_id ORDER BY 1"),
            {"ingestion_id": ingestion_id},
        ).scalars()
        return [str(r) for r in found]


def reassign_round(catalog: Catalog, ingestion_id: str, new_round: str) -> int:
    """Move an ingestion and all its visits to `new_round` and rebuild its households; return visits moved.

    Zone objects keep the label they were written with (they are write-once): the registry is what counts.
    Refuses (RoundCollision) when a household of the ingestion has a live visit of another ingestion there.
    """
    validate_round(new_round)
    params = {"ingestion_id": ingestion_id, "new_round": new_round}
    with catalog.write_lock, catalog.engine.begin() as connection:
        _take_write_lock(connection)
        if (
            connection.execute(
                text("SELECT id FROM ingestions WHERE id = :ingestion_id"), params
            ).scalar_one_or_none()
            is None
        ):
            raise UnknownIngestion(f"no ingestion {ingestion_id}")
        clashes = connection.execute(
            text(
                f"SELECT COUNT(DISTINCT v.household) FROM visits v WHERE {_LIVE} "  # noqa: S608
                "AND v.survey_round = :new_round AND v.ingestion_id <> :ingestion_id "
                "AND v.household IN (SELECT household FROM visits WHERE ingestion_id = :ingestion_id)"
            ),
            params,
        ).scalar_one()
        if clashes:
            raise RoundCollision(
                f"{clashes} household(s) of {ingestion_id} already have a visit of another ingestion in "
                f"round {new_round}; review or reassign that ingestion first"
            )
        connection.execute(
            text("UPDATE ingestions SET survey_round = :new_round WHERE id = :ingestion_id"), params
        )
        moved = connection.execute(
            text("UPDATE visits SET survey_round = :new_round WHERE ingestion_id = :ingestion_id"), params
        ).rowcount
        _rebuild(connection, _OF_INGESTION, params)
    return int(moved)


# ---- queries -----------------------------------------------------------------------------------------------

_STARTS = (
    "starts AS (SELECT survey_round, MIN(collected_at) AS started FROM visits "
    "WHERE state = 'final' GROUP BY survey_round)"
)


def _utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every catalog time is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rounds(catalog: Catalog) -> list[RoundRow]:
    """Every round with final visits, ordered by when it was collected (its earliest visit), then by label."""
    query = text(
        "SELECT survey_round, COUNT(DISTINCT CASE WHEN superseded_by IS NULL THEN household END), COUNT(*), "
        "COUNT(DISTINCT ingestion_id), MIN(collected_at) AS first_collected_at FROM visits "
        "WHERE state = 'final' GROUP BY survey_round ORDER BY MIN(collected_at), survey_round"
    ).columns(
        survey_round=String(),
        households=Integer(),
        visits=Integer(),
        ingestions=Integer(),
        first_collected_at=DateTime(timezone=True),
    )
    with catalog.engine.connect() as connection:
        found = connection.execute(query).all()
    return [
        RoundRow(
            round=r,
            households=int(h),
            visits=int(v),
            ingestions=int(i),
            first_collected_at=_utc(_as_datetime(at)),
        )
        for r, h, v, i, at in found
    ]


def _as_datetime(value: object) -> datetime:
    """A datetime from the driver, or from SQLite's text (aggregates lose SQLAlchemy's result type)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def current_round(catalog: Catalog) -> str | None:
    """The latest round with final visits, or None before any."""
    ordered = rounds(catalog)
    return ordered[-1]["round"] if ordered else None


def _visits_frame(found: Sequence[Any]) -> pl.DataFrame:
    rows = [dict(zip(_VISIT_COLUMNS, r, strict=True)) for r in found]
    for row in rows:
        row["collected_at"] = _utc(_as_datetime(row["collected_at"]))
    return pl.DataFrame(rows, schema=_VISIT_SCHEMA, orient="row")


_VISIT_SELECT = (
    "v.id AS visit_id, v.household, v.survey_round, v.ingestion_id, v.row_identity, v.collected_at, v.district, "
    "v.cluster, v.village, v.observed_status, v.p_vulnerable, v.risk_band, v.model_version, "
    "v.predicted_status, v.expected_per_day, v.source_row, " + ", ".join(f"v.{a}" for a in ANSWERS)
)


def latest_visits(catalog: Catalog, rounds: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per household: its latest final visit within `rounds` (all when None), the unit KPIs count."""
    within = "AND v.survey_round IN :rounds" if rounds is not None else ""
    query = text(
        f"WITH {_STARTS}, ranked AS (SELECT {_VISIT_SELECT}, ROW_NUMBER() OVER (PARTITION BY v.household "  # noqa: S608
        "ORDER BY s.started DESC, v.survey_round DESC, v.collected_at DESC, v.id DESC) AS seq "
        f"FROM visits v JOIN starts s ON s.survey_round = v.survey_round WHERE {_LIVE} {within}) "
        f"SELECT {', '.join(_VISIT_COLUMNS)} FROM ranked WHERE seq = 1 ORDER BY household"
    )
    params: dict[str, Any] = {}
    if rounds is not None:
        if not rounds:
            return pl.DataFrame(schema=_VISIT_SCHEMA)
        query = query.bindparams(bindparam("rounds", expanding=True))
        params["rounds"] = list(rounds)
    with catalog.engine.connect() as connection:
        return _visits_frame(connection.execute(query, params).all())


def visit_in_round(catalog: Catalog, household: str, survey_round: str) -> int | None:
    """The id of a household's counted visit in a round (what a review approval supersedes), if any."""
    with catalog.engine.connect() as connection:
        found = connection.execute(
            text(
                f"SELECT v.id FROM visits v WHERE v.household = :household AND v.survey_round = :survey_round "  # noqa: S608
                f"AND {_LIVE} ORDER BY v.collected_at DESC, v.id DESC"
            ),
            {"household": household, "survey_round": survey_round},
        ).first()
    return int(found[0]) if found else None


def _check_rounds(catalog: Catalog, *asked: str) -> list[str]:
    """The rounds in collection order; UnknownRound when one asked for has no final visit."""
    known = [r["round"] for r in rounds(catalog)]
    for label in asked:
        if label not in known:
            listed = ", ".join(known) if known else "none yet"
            raise UnknownRound(f"no visits in round {label!r} (rounds: {listed})")
    return known


def _worse_or_better(before: str, after: str) -> int:
    """+1 when `after` is a better status than `before`, -1 when worse, 0 when the same."""
    change = STATUS_ORDER.index(after) - STATUS_ORDER.index(before)
    return (change > 0) - (change < 0)


def transitions(catalog: Catalog, from_round: str, to_round: str, district: str | None = None) -> Progress:
    """How households seen in both rounds moved in observed status and risk band, each household once.

    Counts of `from` and `to` take each round's visit's district; `both` and the transitions the district of
    the household's visit in `from_round`. Visits without a status (or band) are left out of that table.
    """
    if from_round == to_round:
        raise UnknownRound(f"progress compares two different rounds, not {from_round!r} with itself")
    _check_rounds(catalog, from_round, to_round)

    # one grouped pass over each household's latest visit per round: a self-join of that ranked set had no
    # index to use and ran for minutes at 100k households on SQLite
    def pick(column: str, survey_round: str) -> str:
        return f"MAX(CASE WHEN survey_round = :{survey_round} THEN {column} END)"

    in_district = "district = :district" if district is not None else "1 = 1"
    query = text(
        "WITH per_round AS (SELECT v.household, v.survey_round, v.district, v.observed_status, v.risk_band, "  # noqa: S608
        "ROW_NUMBER() OVER (PARTITION BY v.household, v.survey_round ORDER BY v.collected_at DESC, v.id DESC) "
        f"AS seq FROM visits v WHERE {_LIVE} AND v.survey_round IN (:from_round, :to_round)), "
        f"paired AS (SELECT household, {pick('1', 'from_round')} AS seen_from, {pick('1', 'to_round')} AS seen_to, "
        f"{pick(f'CASE WHEN {in_district} THEN 1 ELSE 0 END', 'from_round')} AS from_here, "
        f"{pick(f'CASE WHEN {in_district} THEN 1 ELSE 0 END', 'to_round')} AS to_here, "
        f"{pick('observed_status', 'from_round')} AS status_from, {pick('observed_status', 'to_round')} AS status_to, "
        f"{pick('risk_band', 'from_round')} AS band_from, {pick('risk_band', 'to_round')} AS band_to "
        "FROM per_round WHERE seq = 1 GROUP BY household) "
        "SELECT seen_from, seen_to, from_here, to_here, status_from, status_to, band_from, band_to, COUNT(*) "
        "FROM paired GROUP BY seen_from, seen_to, from_here, to_here, status_from, status_to, band_from, band_to"
    )
    params = {"from_round": from_round, "to_round": to_round, "district": district}
    with catalog.engine.connect() as connection:
        groups = connection.execute(query, params).all()
    households: HouseholdCounts = {"from": 0, "to": 0, "both": 0}
    pairs: list[tuple[str | None, str | None, str | None, str | None, int]] = []
    for seen_from, seen_to, from_here, to_here, *moves, n in groups:
        households["from"] += int(n) if seen_from and from_here else 0
        households["to"] += int(n) if seen_to and to_here else 0
        if seen_from and seen_to and from_here:
            pairs.append((moves[0], moves[1], moves[2], moves[3], int(n)))
    status: dict[str, dict[str, int]] = {}
    bands: dict[str, dict[str, int]] = {}
    moved = {1: 0, -1: 0, 0: 0}
    both = 0
    for before, after, band_before, band_after, n in pairs:
        both += int(n)
        if before in STATUS_ORDER and after in STATUS_ORDER:
            row = status.setdefault(before, {})
            row[after] = row.get(after, 0) + int(n)
            moved[_worse_or_better(before, after)] += int(n)
        if band_before is not None and band_after is not None:
            band_row = bands.setdefault(band_before, {})
            band_row[band_after] = band_row.get(band_after, 0) + int(n)
    return Progress(
        rounds=[from_round, to_round],
        households={**households, "both": both},
        transitions=status,
        risk_transitions=bands,
        improved=moved[1],
        worsened=moved[-1],
        unchanged=moved[0],
    )


def _not_visited(catalog: Catalog) -> str:
    """`r.household` has no counted visit in round `:current`, written as each dialect plans it well.

    SQLite: NOT IN on the visited set (a correlated NOT EXISTS sought by (survey_round, state) and scanned a
    whole round per household: minutes at 1M). PostgreSQL: NOT EXISTS, a hash anti-join (NOT IN cannot be one,
    because of NULL semantics, and ran >25 min at 1M).
    """
    visited = "c.survey_round = :current AND c.state = 'final' AND c.superseded_by IS NULL"
    if catalog.engine.dialect.name == "postgresql":
        return f"NOT EXISTS (SELECT 1 FROM visits c WHERE c.household = r.household AND {visited})"  # noqa: S608
    return f"r.household NOT IN (SELECT c.household FROM visits c WHERE {visited})"  # noqa: S608


def followups(
    catalog: Catalog, current_round: str, villages: Sequence[tuple[str, str, str]] | None = None
) -> pl.DataFrame:
    """Households seen in a round before `current_round` and not yet visited in it, with their last visit.

    `villages` keeps those whose last visit was in one of these (district, cluster, village). A round with no
    visit yet comes after every known round.
    """
    known = [r["round"] for r in rounds(catalog)]
    earlier = known[: known.index(current_round)] if current_round in known else known
    if not earlier or villages is not None and not villages:
        return pl.DataFrame(schema=_VISIT_SCHEMA)
    params: dict[str, Any] = {"earlier": earlier, "current": current_round}
    in_villages = ""
    if villages is not None:
        triples = []
        for n, (district, cluster, village) in enumerate(villages):
            triples.append(f"(r.district = :d{n} AND r.cluster = :c{n} AND r.village = :v{n})")
            params |= {f"d{n}": district, f"c{n}": cluster, f"v{n}": village}
        in_villages = f"AND ({' OR '.join(triples)})"
    query = text(
        f"WITH {_STARTS}, ranked AS (SELECT {_VISIT_SELECT}, ROW_NUMBER() OVER (PARTITION BY v.household "  # noqa: S608
        "ORDER BY s.started DESC, v.survey_round DESC, v.collected_at DESC, v.id DESC) AS seq "
        f"FROM visits v JOIN starts s ON s.survey_round = v.survey_round WHERE {_LIVE} "
        "AND v.survey_round IN :earlier) "
        f"SELECT {', '.join(_VISIT_COLUMNS)} FROM ranked r WHERE seq = 1 {in_villages} "
        f"AND {_not_visited(catalog)} "
        "ORDER BY district, cluster, village, household"
    ).bindparams(bindparam("earlier", expanding=True))
    with catalog.engine.connect() as connection:
        return _visits_frame(connection.execute(query, params).all())


def edited_visits(catalog: Catalog, ingestion_id: str) -> pl.DataFrame:
    """API edits landed in an ingestion: per instance id and household, the row identity of the visit replaced.

    An edit (ODK `deprecated_id`) is the next version of its chain in `survey_submissions`; the visit it
    replaces is the live visit of the same household recorded from the chain's previous version.
    """
    query = text(
        "SELECT s.instance_id, v.household, v.row_identity FROM survey_submissions s "
        "JOIN survey_submissions p ON p.chain_id = s.chain_id AND p.version = s.version - 1 "
        "JOIN visits v ON v.ingestion_id = p.ingestion_id AND v.superseded_by IS NULL "
        "WHERE s.ingestion_id = :ingestion_id AND s.deprecated_id IS NOT NULL"
    )
    with catalog.engine.connect() as connection:
        found = connection.execute(query, {"ingestion_id": ingestion_id}).all()
    return pl.DataFrame(
        [tuple(r) for r in found],
        schema={"instance_id": pl.String, PSEUDONYM: pl.String, "replaces_identity": pl.String},
        orient="row",
    )
