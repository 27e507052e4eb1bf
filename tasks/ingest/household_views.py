"""Distinct households for the dashboard and exports: each household once, by its latest visit in chosen rounds.

Everything here reads the catalog's `visits` (and `ingestions` for the source), never zone objects, so the
counts outlive the archive. A household's latest visit is its final, non-superseded visit of the latest round
(rounds in collection order), then the latest collected, then the latest recorded: the order of
`households.latest_visits`. One window orders each household's visits that way, so a query costs one sort of
the live visits in the chosen rounds, and the dashboard caches the small result by `catalog_version`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import polars as pl
from sqlalchemy import bindparam, text

from tasks.ingest import contract
from tasks.ingest.households import ANSWERS
from tasks.ingest.identity import REFERENCE_PATTERN
from tasks.platform.catalog.repo import Catalog
from tasks.platform.errors import BadInput

NOT_SCORED: Final = "Not scored"  # the risk band of a visit no model has scored
VULNERABLE: Final = tuple(sorted(contract.VULNERABLE_STATUSES))
REFERENCE: Final = REFERENCE_PATTERN
_LIVE: Final = "v.state = 'final' AND v.superseded_by IS NULL"

CUBE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "survey_round": pl.String(),
    "district": pl.String(),
    "cluster": pl.String(),
    "village": pl.String(),
    "source": pl.String(),
    "status": pl.String(),
    "risk_band": pl.String(),
    "visits": pl.Int64(),
    "round_households": pl.Int64(),
    "round_vulnerable": pl.Int64(),
    "households": pl.Int64(),
    "household_visits": pl.Int64(),
    "vulnerable": pl.Int64(),
    "scored": pl.Int64(),
    "p_sum": pl.Float64(),
}
HOUSEHOLD_SCHEMA: Final[dict[str, pl.DataType]] = {
    "household_pseudonym": pl.String(),
    "visit_id": pl.Int64(),
    "survey_round": pl.String(),
    "ingestion_id": pl.String(),
    "source_row": pl.Int64(),
    "collected_at": pl.Datetime("us", "UTC"),
    "district": pl.String(),
    "cluster": pl.String(),
    "village": pl.String(),
    "status": pl.String(),
    "observed_status": pl.String(),
    "predicted_status": pl.String(),
    "p_vulnerable": pl.Float64(),
    "risk_band": pl.String(),
    "model_version": pl.String(),
    "expected_per_day": pl.Float64(),
    "source": pl.String(),
    "visits": pl.Int64(),
}
TIMELINE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "household_pseudonym": pl.String(),
    "visit_id": pl.Int64(),
    "survey_round": pl.String(),
    "collected_at": pl.Datetime("us", "UTC"),
    "status": pl.String(),
    "observed_status": pl.String(),
    "predicted_status": pl.String(),
    "p_vulnerable": pl.Float64(),
    "risk_band": pl.String(),
    "model_version": pl.String(),
    "district": pl.String(),
    "cluster": pl.String(),
    "village": pl.String(),
    "ingestion_id": pl.String(),
    "source_row": pl.Int64(),
    "superseded": pl.Boolean(),
    **{a: pl.Int64() if a == "household_size" else pl.Float64() for a in ANSWERS},
}


class BadReference(BadInput, ValueError):
    """A household reference that is not `hh-` followed by 10 hex digits."""


@dataclass(frozen=True)
class Selection:
    """Which households to list: their latest visit in `rounds`, then filters on it; empty filters keep all."""

    rounds: tuple[str, ...]
    districts: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()


# ---- rounds and the catalog's version ----------------------------------------------------------------------


_LABELS = (
    "WITH RECURSIVE labels(survey_round) AS ("
    "SELECT MIN(survey_round) FROM visits UNION ALL "
    "SELECT (SELECT MIN(x.survey_round) FROM visits x WHERE x.survey_round > l.survey_round) "
    "FROM labels l WHERE l.survey_round IS NOT NULL) "
)  # every round label of any visit: one index seek per label (a loose scan of ix_visits_round_start)


def round_order(catalog: Catalog) -> list[str]:
    """Rounds with final visits in collection order (earliest final visit, then label), as `households.rounds`.

    One index seek per round instead of a pass over every visit: `households.rounds` also counts distinct
    households per round, ~13 s for 1M households x 2 rounds on SQLite.
    """
    query = text(
        f"{_LABELS}SELECT l.survey_round, (SELECT MIN(s.collected_at) FROM visits s "  # noqa: S608 - fixed
        "WHERE s.survey_round = l.survey_round AND s.state = 'final') FROM labels l "
        "WHERE l.survey_round IS NOT NULL"
    )
    with catalog.engine.connect() as connection:
        found = [(str(r), _instant(s)) for r, s in connection.execute(query).all() if s is not None]
    return [r for r, _ in sorted(found, key=lambda pair: (pair[1], pair[0]))]


def catalog_version(catalog: Catalog) -> tuple[Any, ...]:
    """A value that changes whenever the counted visits may have: new or finalised visits, scores, rounds.

    Index seeks only (milliseconds at 2M visits; counting the final visits scanned an index: ~0.3 s on
    SQLite, ~1 s on PostgreSQL): the newest visit (recorded, superseding or approved visits), the pending
    visits per round (they become final when their ingestion completes), the newest zone object (a backfill
    scored old visits) and the ingestions per round (`rtv rounds reassign`).
    """
    with catalog.engine.connect() as connection:
        visits = connection.execute(
            text(
                f"{_LABELS}SELECT l.survey_round, (SELECT COUNT(*) FROM visits p "  # noqa: S608 - fixed
                "WHERE p.survey_round = l.survey_round AND p.state = 'pending') FROM labels l "
                "WHERE l.survey_round IS NOT NULL"
            )
        ).all()
        newest = connection.execute(
            text("SELECT (SELECT MAX(id) FROM visits), (SELECT MAX(id) FROM zone_objects)")
        ).one()
        rounds = connection.execute(
            text(
                "SELECT survey_round, COUNT(*), MAX(finished_at) FROM ingestions "
                "GROUP BY survey_round ORDER BY survey_round"
            )
        ).all()
    return (
        tuple(newest),
        tuple((str(r), int(n)) for r, n in visits),
        tuple((r, int(n), str(f)) for r, n, f in rounds),
    )


# ---- the latest visit per household -----------------------------------------------------------------------


def _ranked(
    order: Sequence[str], rounds: Sequence[str], columns: str, dialect: str
) -> tuple[str, dict[str, Any]]:
    """The live visits of `rounds`, each household's oldest first, with `visit_number` and `newer_round`.

    `newer_round` is the round of the household's next (newer) visit: null on its latest visit, and another
    round on its latest visit in a round. On the latest visit `visit_number` is the household's live visits
    in `rounds`. Ordering oldest first gives that count from the same window (a whole-partition COUNT frame
    added ~18 s at 1M households x 2 rounds on SQLite).
    """
    rank = " ".join(f"WHEN :rank_{i} THEN {i}" for i in range(len(order)))
    params: dict[str, Any] = {f"rank_{i}": r for i, r in enumerate(order)} | {"rounds": list(rounds)}
    # SQLite otherwise reads the rounds through ix_visits_round_start, one table lookup per visit in the
    # index's order: half as fast as scanning the table (measured at 40k and 2M visits)
    scan = " NOT INDEXED" if dialect == "sqlite" else ""
    sql = (
        f"SELECT {columns}, ROW_NUMBER() OVER w AS visit_number, LEAD(v.survey_round) OVER w AS newer_round "  # noqa: S608
        f"FROM visits v{scan} WHERE {_LIVE} AND v.survey_round IN :rounds "
        f"WINDOW w AS (PARTITION BY v.household ORDER BY CASE v.survey_round {rank} END, v.collected_at, v.id)"
    )
    return sql, params


_STATUS = "COALESCE(v.observed_status, v.predicted_status)"
_VULNERABLE_SQL = "r.status IN (" + ", ".join(f"'{s}'" for s in VULNERABLE) + ")"
_LATEST = "r.newer_round IS NULL"
_ROUND_LATEST = "(r.newer_round IS NULL OR r.newer_round <> r.survey_round)"
_CUBE_KEYS: Final = ("survey_round", "district", "cluster", "village", "ingestion_id", "status", "risk_band")
_CUBE_MEASURES: Final = (
    "visits",
    "round_households",
    "round_vulnerable",
    "households",
    "household_visits",
    "vulnerable",
    "scored",
)


def household_cube(catalog: Catalog, rounds: Sequence[str]) -> pl.DataFrame:
    """Counts per round, place, source, status and risk band for the households seen in `rounds`.

    `households`, `vulnerable`, `scored` and `p_sum` count each household once, at its latest visit in
    `rounds`, and `household_visits` its live visits in `rounds`; `round_households` and `round_vulnerable`
    count it once per round (its latest visit there); `visits` counts every live visit where it was made.
    Status: observed, else predicted; an unscored visit's band: NOT_SCORED. Grouped by ingestion in SQL, then
    by its source here: a join per visit cost more than the grouping.
    """
    order = round_order(catalog)
    chosen = [r for r in order if r in set(rounds)]
    if not chosen:
        return pl.DataFrame(schema=CUBE_SCHEMA)
    ranked, params = _ranked(
        order,
        chosen,
        f"v.survey_round, v.ingestion_id, v.district, v.cluster, v.village, {_STATUS} AS status, "
        "v.risk_band, v.p_vulnerable",
        catalog.engine.dialect.name,
    )
    keys = ", ".join(f"r.{k}" for k in _CUBE_KEYS)
    # a subquery, not a CTE: SQLite streams it (a co-routine) instead of writing every visit to a temporary
    # table first (51 s against 79 s for 1M households x 2 rounds on a busy 2-core machine)
    query = text(
        f"SELECT {keys}, COUNT(*), "  # noqa: S608 - fixed fragments; values go as parameters
        f"SUM(CASE WHEN {_ROUND_LATEST} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {_ROUND_LATEST} AND {_VULNERABLE_SQL} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {_LATEST} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {_LATEST} THEN r.visit_number ELSE 0 END), "
        f"SUM(CASE WHEN {_LATEST} AND {_VULNERABLE_SQL} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {_LATEST} AND r.p_vulnerable IS NOT NULL THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {_LATEST} THEN r.p_vulnerable END) FROM ({ranked}) r GROUP BY {keys}"
    ).bindparams(bindparam("rounds", expanding=True))
    with catalog.engine.connect() as connection:
        found = connection.execute(query, params).all()
        sources: dict[str, str] = {
            str(i): str(n) for i, n in connection.execute(text("SELECT id, source FROM ingestions")).all()
        }
    schema = {k: pl.String() for k in _CUBE_KEYS} | {m: pl.Int64() for m in _CUBE_MEASURES}
    grouped = pl.DataFrame([tuple(r) for r in found], schema=schema | {"p_sum": pl.Float64()}, orient="row")
    return (
        grouped.with_columns(
            pl.col("ingestion_id")
            .replace_strict(sources, default="unknown", return_dtype=pl.String)
            .alias("source"),
            pl.col("risk_band").fill_null(NOT_SCORED),
        )
        .group_by([c for c in CUBE_SCHEMA if c in _CUBE_KEYS or c == "source"], maintain_order=True)
        .agg(*(pl.col(m).sum() for m in _CUBE_MEASURES), pl.col("p_sum").sum())
        .select(list(CUBE_SCHEMA))
    )


def _filters(selection: Selection, params: dict[str, Any]) -> str:
    """SQL conditions on the latest visits (`l`) for the selection's filters; fills `params`."""
    conditions = []
    for column, values in (
        ("district", selection.districts),
        ("cluster", selection.clusters),
        ("village", selection.villages),
        ("source", selection.sources),
        ("status", selection.statuses),
        ("risk_band", selection.bands),
    ):
        if values:
            names = []
            for i, value in enumerate(values):
                params[f"{column}_{i}"] = value
                names.append(f":{column}_{i}")
            conditions.append(f"l.{column} IN ({', '.join(names)})")
    return " AND ".join(conditions) or "1 = 1"


def households(catalog: Catalog, selection: Selection, limit: int | None = None) -> pl.DataFrame:
    """The latest visit of each household the selection keeps, most likely vulnerable first (`limit` at most).

    Each row's `visits` is the household's live visits in the chosen rounds; `household_pseudonym` its keyed
    pseudonym; `survey_round` the round of its latest visit. How many match is the cube's `households` under
    the same filters (`household_cube`): counting here too would keep every match to the end of the query.
    """
    order = round_order(catalog)
    chosen = [r for r in order if r in set(selection.rounds)]
    if not chosen:
        return pl.DataFrame(schema=HOUSEHOLD_SCHEMA)
    ranked, params = _ranked(
        order,
        chosen,
        "v.household, v.id AS visit_id, v.survey_round, v.ingestion_id, v.source_row, v.collected_at, "
        f"v.district, v.cluster, v.village, {_STATUS} AS status, v.observed_status, v.predicted_status, "
        "v.p_vulnerable, v.risk_band, v.model_version, v.expected_per_day",
        catalog.engine.dialect.name,
    )
    where = _filters(selection, params)
    columns = ", ".join(f"l.{c}" for c in HOUSEHOLD_SCHEMA if c != "household_pseudonym")
    query = text(
        f"SELECT l.household_pseudonym, {columns} FROM ("  # noqa: S608 - fixed fragments; values go as parameters
        "SELECT r.household AS household_pseudonym, r.visit_id, r.survey_round, r.ingestion_id, r.source_row, "
        "r.collected_at, r.district, r.cluster, r.village, r.status, r.observed_status, r.predicted_status, "
        "r.p_vulnerable, COALESCE(r.risk_band, :not_scored) AS risk_band, r.model_version, r.expected_per_day, "
        "COALESCE(g.source, 'unknown') AS source, r.visit_number AS visits "
        f"FROM ({ranked}) r LEFT JOIN ingestions g ON g.id = r.ingestion_id WHERE {_LATEST}) l WHERE {where} "
        "ORDER BY l.p_vulnerable DESC NULLS LAST, l.household_pseudonym"
        + ("" if limit is None else " LIMIT :limit")
    ).bindparams(bindparam("rounds", expanding=True))
    params |= {"not_scored": NOT_SCORED} | ({} if limit is None else {"limit": limit})
    with catalog.engine.connect() as connection:
        found = connection.execute(query, params).all()
    rows = [(*r[:5], _instant(r[5]), *r[6:]) for r in found]
    return pl.DataFrame(rows, schema=HOUSEHOLD_SCHEMA, orient="row")


# ---- one household over time ------------------------------------------------------------------------------


def reference_prefix(reference: str) -> str:
    """The pseudonym prefix a reference (`hh-` + 10 hex digits, as the Households page shows it) stands for."""
    found = REFERENCE.fullmatch(reference.strip().lower())
    if found is None:
        raise BadReference(
            f"{reference.strip()[:40]!r} is not a household reference: use hh- and 10 hex digits"
        )
    return found.group(1)


def timeline(catalog: Catalog, reference: str) -> pl.DataFrame:
    """Every final visit of the household(s) whose pseudonym starts with the reference's prefix, by round.

    Rounds in collection order, then collected time; `superseded` marks a visit a later one replaced in its
    round (kept as history). Two households may share a 10-digit prefix: both come back, told apart by
    `household_pseudonym`.
    """
    prefix = reference_prefix(reference)
    order = {r: i for i, r in enumerate(round_order(catalog))}
    answers = ", ".join(f"v.{a}" for a in ANSWERS)
    query = text(
        "SELECT v.household, v.id, v.survey_round, v.collected_at, "  # noqa: S608 - fixed column names
        f"{_STATUS}, v.observed_status, v.predicted_status, v.p_vulnerable, "
        "COALESCE(v.risk_band, :not_scored), v.model_version, v.district, v.cluster, v.village, v.ingestion_id, "
        f"v.source_row, CASE WHEN v.superseded_by IS NULL THEN 0 ELSE 1 END, {answers} FROM visits v "
        # a range on the (household, survey_round) index: hex digits sort below "g"
        "WHERE v.household >= :low AND v.household < :high AND v.state = 'final'"
    )
    with catalog.engine.connect() as connection:
        found = connection.execute(
            query, {"low": prefix, "high": prefix + "g", "not_scored": NOT_SCORED}
        ).all()
    rows = [(*r[:3], _instant(r[3]), *r[4:15], bool(r[15]), *r[16:]) for r in found]
    frame = pl.DataFrame(rows, schema=TIMELINE_SCHEMA, orient="row")
    return (
        frame.with_columns(
            pl.col("survey_round")
            .replace_strict(order, default=len(order), return_dtype=pl.Int64)
            .alias("_at")
        )
        .sort("household_pseudonym", "_at", "collected_at", "visit_id")
        .drop("_at")
    )


def answer_changes(visits: pl.DataFrame) -> pl.DataFrame:
    """The answers of a household's first and latest counted visit, largest relative change first.

    The relative change is |latest - first| / max(|first|, |latest|): 0 when equal, 1 when one of them is 0,
    null (listed last) when either is missing.
    """
    live = visits.filter(~pl.col("superseded")) if "superseded" in visits.columns else visits
    schema = {"answer": pl.String, "first": pl.Float64, "latest": pl.Float64, "change": pl.Float64}
    if live.height == 0:
        return pl.DataFrame(schema=schema | {"relative": pl.Float64})
    first, latest = live.row(0, named=True), live.row(-1, named=True)
    frame = pl.DataFrame(
        [(a, _number(first[a]), _number(latest[a]), None) for a in ANSWERS],
        schema=schema,
        orient="row",
    ).with_columns((pl.col("latest") - pl.col("first")).alias("change"))
    scale = pl.max_horizontal(pl.col("first").abs(), pl.col("latest").abs())
    return frame.with_columns(
        pl.when(scale > 0).then(pl.col("change").abs() / scale).when(scale == 0).then(0.0).alias("relative")
    ).sort("relative", descending=True, nulls_last=True, maintain_order=True)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _instant(value: object) -> datetime | None:
    """A UTC datetime from the driver's value (SQLite hands back text, or a datetime without its zone)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
