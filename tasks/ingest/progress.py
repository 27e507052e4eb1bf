"""Progress between two survey rounds: by place, who fell back, cohort coverage, model versions, suppression.

One grouped pass pairs each household's counted visit in the two rounds into a temporary table; small
grouped queries then read that table (per village; the transitions and model versions per district; the
fell-back list), so a comparison costs one sort of the two rounds' visits, not one per figure. A household's
place is where it was seen in the earlier round (in the later one, for a household new there). Counts travel
with their shares, and `suppress` blanks every cell under the minimum cell size before it is shown or exported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, TypedDict

import polars as pl
from sqlalchemy import Connection, text

from tasks.ingest.households import STATUS_ORDER, UnknownRound
from tasks.ingest.identity import household_reference_expr
from tasks.platform.catalog.repo import Catalog

VULNERABLE: Final = ("Severely Struggling", "Struggling")
NOT_VULNERABLE: Final = ("At Risk", "On Track")
PLACE: Final = ("district", "cluster", "village")
LEVELS: Final[dict[str, tuple[str, ...]]] = {"district": PLACE[:1], "cluster": PLACE[:2], "village": PLACE}
NOT_SCORED: Final = "not scored"

_PAIRS: Final = "progress_pairs"
_PAIR_COLUMNS: Final = {
    "household": "TEXT",
    "n_from": "INTEGER",  # counted visits in each round: 0 or 1, unless two rows of a round were approved
    "n_to": "INTEGER",
    "district": "TEXT",
    "cluster": "TEXT",
    "village": "TEXT",
    "status_from": "TEXT",
    "status_to": "TEXT",
    "band_from": "TEXT",
    "band_to": "TEXT",
    "version_from": "TEXT",
    "version_to": "TEXT",
    "ingestion_id": "TEXT",
    "source_row": "BIGINT",
}
_PLACES_SCHEMA: Final = {
    "district": pl.String,
    "cluster": pl.String,
    "village": pl.String,
    "seen_first": pl.Int64,
    "found_again": pl.Int64,
    "moved_out": pl.Int64,
    "fell_back": pl.Int64,
}
_MOVES_SCHEMA: Final = {
    "district": pl.String,
    "status_from": pl.String,
    "status_to": pl.String,
    "band_from": pl.String,
    "band_to": pl.String,
    "households": pl.Int64,
}
_FELL_BACK_SCHEMA: Final = {
    "household": pl.String,
    "ingestion_id": pl.String,
    "source_row": pl.Int64,
    "district": pl.String,
    "cluster": pl.String,
    "village": pl.String,
    "status_from": pl.String,
    "status_to": pl.String,
}
_KINDS_SCHEMA: Final = {
    "district": pl.String,
    "seen_from": pl.Int64,
    "seen_to": pl.Int64,
    "status_from": pl.String,
    "status_to": pl.String,
    "band_from": pl.String,
    "band_to": pl.String,
    "version_from": pl.String,
    "version_to": pl.String,
    "households": pl.Int64,
}


class Summary(TypedDict):
    """Households seen in both rounds, and how many improved, worsened or kept their observed status."""

    both: int
    improved: int
    worsened: int
    unchanged: int


@dataclass(frozen=True)
class Comparison:
    """Two rounds compared, before suppression; every frame carries the district, so a district is a filter."""

    rounds: tuple[str, str]
    places: pl.DataFrame  # per village of the earlier round: seen_first, found_again, moved_out, fell_back
    moves: pl.DataFrame  # households seen in both, per district and (status, band) before and after
    fell_back: pl.DataFrame  # one row per household that fell back, at its place in the earlier round
    versions: pl.DataFrame  # visits of each round per district and model version (NOT_SCORED: none)

    def within(self, district: str | None) -> Comparison:
        """The same comparison for one district (None: all)."""
        if district is None:
            return self
        here = pl.col("district") == district
        return replace(
            self,
            places=self.places.filter(here),
            moves=self.moves.filter(here),
            fell_back=self.fell_back.filter(here),
            versions=self.versions.filter(here),
        )

    def districts(self) -> list[str]:
        """Districts with a household in either round."""
        return sorted(set(self.places["district"].to_list()) | set(self.versions["district"].to_list()))


# ---- the pass over the visits ------------------------------------------------------------------------------


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"  # this module's constant status names only


def _pairs_select(source: str, collate: str) -> str:
    """One row per household of `source` (visits of the two rounds): its visit count and values in each.

    `collate` is ` COLLATE "C"` on PostgreSQL: grouping by the pseudonym's bytes instead of the database's
    locale (strcoll) halved that sort's cost at 1M households x 2 rounds (~10-17 s instead of ~20 s).
    """

    def pick(column: str, side: str) -> str:
        return f"MAX(CASE WHEN survey_round = :{side} THEN {column} END)"

    def place(column: str) -> str:  # where the household was in the earlier round, else in the later one
        return f"COALESCE({pick(column, 'from_round')}, {pick(column, 'to_round')})"

    def latest(column: str) -> str:  # the later visit: its zone objects are the last to be archived
        return f"COALESCE({pick(column, 'to_round')}, {pick(column, 'from_round')})"

    # S608: column names and `source` are this module's constants; the rounds go as parameters
    return (
        f"SELECT household{collate}, SUM(CASE WHEN survey_round = :from_round THEN 1 ELSE 0 END), "  # noqa: S608
        "SUM(CASE WHEN survey_round = :to_round THEN 1 ELSE 0 END), "
        f"{place('district')}, {place('cluster')}, {place('village')}, "
        f"{pick('observed_status', 'from_round')}, {pick('observed_status', 'to_round')}, "
        f"{pick('risk_band', 'from_round')}, {pick('risk_band', 'to_round')}, "
        f"{pick('model_version', 'from_round')}, {pick('model_version', 'to_round')}, "
        f"{latest('ingestion_id')}, {latest('source_row')} FROM {source} GROUP BY household{collate}"
    )


_VISIT_FIELDS: Final = (
    "v.id, v.household, v.survey_round, v.collected_at, v.ingestion_id, v.source_row, v.district, v.cluster, "
    "v.village, v.observed_status, v.risk_band, v.model_version"
)
_LIVE_IN_ROUNDS: Final = (
    "v.state = 'final' AND v.superseded_by IS NULL AND v.survey_round IN (:from_round, :to_round)"
)


def _pair(connection: Connection, from_round: str, to_round: str) -> None:
    """Fill the temporary pairs table: one row per household seen in either round, its latest visit in each.

    One GROUP BY household over the two rounds' visits; a window ranking each household's visits first (as
    households.transitions does) is a second sort of the visits (pairing 1M households x 2 rounds: 23 s
    against 16 s of CPU on SQLite, 26 s against 22 s on PostgreSQL). A household with two counted visits in
    one round (two of its rows approved in that round) is paired again through that window, for it alone.
    """
    params = {"from_round": from_round, "to_round": to_round}
    postgres = connection.dialect.name == "postgresql"
    collate = ' COLLATE "C"' if postgres else ""  # SQLite compares bytes already (BINARY)
    columns = ", ".join(_PAIR_COLUMNS)
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_PAIRS}")  # a failed call may leave one (SQLite pool)
    definition = ", ".join(f"{name} {sql_type}" for name, sql_type in _PAIR_COLUMNS.items())
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {_PAIRS} ({definition})")
    visits = f"(SELECT {_VISIT_FIELDS} FROM visits v WHERE {_LIVE_IN_ROUNDS}) s"  # noqa: S608
    connection.execute(text(f"INSERT INTO {_PAIRS} ({columns}) {_pairs_select(visits, collate)}"), params)
    repeated = f"SELECT household FROM {_PAIRS} WHERE n_from > 1 OR n_to > 1"  # noqa: S608
    latest = (
        f"(SELECT * FROM (SELECT {_VISIT_FIELDS}, ROW_NUMBER() OVER (PARTITION BY v.household, v.survey_round "  # noqa: S608
        f"ORDER BY v.collected_at DESC, v.id DESC) AS seq FROM visits v WHERE {_LIVE_IN_ROUNDS} "
        f"AND v.household IN ({repeated})) r WHERE seq = 1) s"
    )
    connection.execute(text(f"INSERT INTO {_PAIRS} ({columns}) {_pairs_select(latest, collate)}"), params)
    connection.exec_driver_sql(f"DELETE FROM {_PAIRS} WHERE n_from > 1 OR n_to > 1")  # noqa: S608
    if postgres:  # a temporary table has no statistics: without them the small groupings below sorted
        connection.exec_driver_sql(f"ANALYZE {_PAIRS}")


def _frame(found: Sequence[Any], schema: Mapping[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([tuple(r) for r in found], schema=dict(schema), orient="row")


def _read(connection: Connection, sql: str, schema: Mapping[str, Any]) -> pl.DataFrame:
    return _frame(connection.execute(text(sql)).all(), schema)


_MOVED_OUT: Final = f"status_from IN {_in(VULNERABLE)} AND status_to IN {_in(NOT_VULNERABLE)}"
_FELL_BACK: Final = f"status_from IN {_in(NOT_VULNERABLE)} AND status_to IN {_in(VULNERABLE)}"


def _check(connection: Connection, *labels: str) -> None:
    """UnknownRound unless each round has a counted visit (one index seek each)."""
    for label in labels:
        found = connection.execute(
            text("SELECT 1 FROM visits WHERE survey_round = :r AND state = 'final' LIMIT 1"), {"r": label}
        ).first()
        if found is None:
            raise UnknownRound(f"no visits in round {label!r}")


def compare(catalog: Catalog, from_round: str, to_round: str) -> Comparison:
    """Compare two rounds for every district; UnknownRound when they are the same or one has no visits."""
    if from_round == to_round:
        raise UnknownRound(f"progress compares two different rounds, not {from_round!r} with itself")
    with catalog.engine.connect() as connection:
        _check(connection, from_round, to_round)
        try:
            _pair(connection, from_round, to_round)
            places = _read(
                connection,
                "SELECT district, cluster, village, COUNT(*), SUM(CASE WHEN n_to > 0 THEN 1 ELSE 0 END), "  # noqa: S608
                f"SUM(CASE WHEN n_to > 0 AND {_MOVED_OUT} THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN n_to > 0 AND {_FELL_BACK} THEN 1 ELSE 0 END) "
                f"FROM {_PAIRS} WHERE n_from > 0 GROUP BY district, cluster, village "
                "ORDER BY district, cluster, village",
                _PLACES_SCHEMA,
            )
            # one pass for the transitions and the model versions: a few hundred groups per district
            kinds = _read(
                connection,
                "SELECT district, CASE WHEN n_from > 0 THEN 1 ELSE 0 END, CASE WHEN n_to > 0 THEN 1 ELSE 0 END, "  # noqa: S608
                "status_from, status_to, band_from, band_to, version_from, version_to, COUNT(*) "
                f"FROM {_PAIRS} GROUP BY district, CASE WHEN n_from > 0 THEN 1 ELSE 0 END, "
                "CASE WHEN n_to > 0 THEN 1 ELSE 0 END, status_from, status_to, band_from, band_to, version_from, "
                "version_to",
                _KINDS_SCHEMA,
            )
            fell_back = _read(
                connection,
                f"SELECT {', '.join(_FELL_BACK_SCHEMA)} FROM {_PAIRS} "  # noqa: S608
                f"WHERE n_from > 0 AND n_to > 0 AND {_FELL_BACK} ORDER BY district, cluster, village, household",
                _FELL_BACK_SCHEMA,
            )
        finally:
            # PostgreSQL: the rollback drops it; SQLite ran the CREATE outside a transaction, so it stays
            connection.rollback()
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_PAIRS}")
    both = kinds.filter(pl.col("seen_from").cast(pl.Boolean) & pl.col("seen_to").cast(pl.Boolean))
    moves = both.group_by(list(_MOVES_SCHEMA)[:-1]).agg(pl.col("households").sum())
    versions = pl.concat(
        kinds.filter(pl.col(f"seen_{side}").cast(pl.Boolean))
        .group_by("district", pl.col(f"version_{side}").alias("model_version"))
        .agg(pl.col("households").sum().alias("visits"))
        .select("district", pl.lit(label).alias("survey_round"), "model_version", "visits")
        for side, label in (("from", from_round), ("to", to_round))
    ).with_columns(pl.col("model_version").fill_null(NOT_SCORED))
    return Comparison((from_round, to_round), places, moves, fell_back, versions)


# ---- views of a comparison ---------------------------------------------------------------------------------


def table(
    moves: pl.DataFrame, before: str, after: str, known: Sequence[str] | None = None
) -> dict[str, dict[str, int]]:
    """{before: {after: households}} over the households seen in both (pairs with a missing value left out)."""
    kept = moves.drop_nulls([before, after])
    if known is not None:
        kept = kept.filter(pl.col(before).is_in(list(known)) & pl.col(after).is_in(list(known)))
    out: dict[str, dict[str, int]] = {}
    for start, end, n in kept.group_by(before, after).agg(pl.col("households").sum()).iter_rows():
        out.setdefault(start, {})[end] = int(n)
    return out


def summary(moves: pl.DataFrame) -> Summary:
    """Households seen in both rounds; improved, worsened and unchanged on the observed status (each once)."""
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    moved = {1: 0, -1: 0, 0: 0}
    for before, ends in table(moves, "status_from", "status_to", STATUS_ORDER).items():
        for after, n in ends.items():
            change = rank[after] - rank[before]
            moved[(change > 0) - (change < 0)] += n
    return Summary(
        both=int(moves["households"].sum()), improved=moved[1], worsened=moved[-1], unchanged=moved[0]
    )


def matrix(moves: Mapping[str, Mapping[str, int]], order: Sequence[str]) -> pl.DataFrame:
    """Every (from, to) cell of a transition table in `order` (others after), zeros included, with row shares."""
    seen = set(moves) | {k for row in moves.values() for k in row}
    names = [o for o in order if o in seen] + sorted(seen - set(order))
    rows = [
        (before, after, int(moves.get(before, {}).get(after, 0)), sum(moves.get(before, {}).values()))
        for before in names
        for after in names
    ]
    schema = {"from": pl.String, "to": pl.String, "households": pl.Int64, "row_total": pl.Int64}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(
        pl.when(pl.col("row_total") > 0).then(pl.col("households") / pl.col("row_total")).alias("share")
    )


def by_place(places: pl.DataFrame, level: str = "village") -> pl.DataFrame:
    """Per district, cluster or village: households seen in both, moved out, fell back, net, with shares."""
    keys = list(LEVELS[level])
    return (
        places.group_by(keys)
        .agg(pl.col("found_again").sum().alias("both"), pl.col("moved_out").sum(), pl.col("fell_back").sum())
        .filter(pl.col("both") > 0)
        .with_columns((pl.col("moved_out") - pl.col("fell_back")).alias("net"))
        .with_columns(
            (pl.col(c) / pl.col("both")).alias(f"{c}_share") for c in ("moved_out", "fell_back", "net")
        )
        .sort(keys)
    )


def coverage(places: pl.DataFrame) -> pl.DataFrame:
    """Per village of the earlier round: households seen there, how many were found again, and the share."""
    return places.select(
        *PLACE,
        "seen_first",
        "found_again",
        (pl.col("found_again") / pl.col("seen_first")).alias("coverage"),
    ).sort(list(PLACE))


def model_versions(versions: pl.DataFrame, rounds: Sequence[str]) -> pl.DataFrame:
    """Visits of each round per model version (most first), the rounds in the order given."""
    order = {r: i for i, r in enumerate(rounds)}
    return (
        versions.group_by("survey_round", "model_version")
        .agg(pl.col("visits").sum())
        .sort(
            pl.col("survey_round").replace_strict(order, default=len(order)),
            pl.col("visits"),
            "model_version",
            descending=[False, True, False],
        )
    )


def version_note(versions: pl.DataFrame, from_round: str, to_round: str) -> str | None:
    """None when one model version scored every visit of both rounds; else which versions scored which."""
    counted = model_versions(versions, (from_round, to_round))
    used = {
        r: counted.filter(pl.col("survey_round") == r).select("model_version", "visits").rows()
        for r in (from_round, to_round)
    }
    one_version = [v for v, _ in used[from_round]]
    if (
        one_version == [v for v, _ in used[to_round]]
        and len(one_version) == 1
        and one_version != [NOT_SCORED]
    ):
        return None

    def say(r: str) -> str:
        parts = [f"{'no model' if v == NOT_SCORED else f'model v{v}'} ({n:,} visits)" for v, n in used[r]]
        return f"{r}: " + (", ".join(parts) or "no visits")

    return (
        "Risk-band transitions do not compare like with like: one model version did not score every visit "
        f"of both rounds ({say(from_round)}; {say(to_round)}). A change of band may come from the model, not "
        "from the household; the observed-status transitions are not affected."
    )


def worklist_by_village(followups: pl.DataFrame) -> pl.DataFrame:
    """Households due a follow-up visit, per village (a village is its district, cluster and village)."""
    return followups.group_by(list(PLACE)).agg(pl.len().cast(pl.Int64).alias("households")).sort(list(PLACE))


reference = household_reference_expr  # the pages' name for it


# ---- small-cell suppression --------------------------------------------------------------------------------

PLACE_CELLS: Final = {
    "both": ("both",),
    "moved_out": ("both", "moved_out"),
    "moved_out_share": ("both", "moved_out"),
    "fell_back": ("both", "fell_back"),
    "fell_back_share": ("both", "fell_back"),
    "net": ("both", "moved_out", "fell_back"),  # a net beside one shown count would give the other back
    "net_share": ("both", "moved_out", "fell_back"),
}
COVERAGE_CELLS: Final = {
    "seen_first": ("seen_first",),
    "found_again": ("seen_first", "found_again"),
    "coverage": ("seen_first", "found_again"),
}
MATRIX_CELLS: Final = {"households": ("households",), "share": ("households",)}
WORKLIST_CELLS: Final = {"households": ("households",)}


def suppress(frame: pl.DataFrame, min_cell_size: int, cells: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """Null each listed column where a household count it rests on is under `min_cell_size` (0 too).

    `cells` maps a column to the count columns it is computed from (a count rests on itself), so a share, or
    a net that would give a hidden count back, is hidden with it. The counts are read before any is nulled.
    """
    small = {c: pl.col(c).fill_null(0) < min_cell_size for rests_on in cells.values() for c in rests_on}
    return frame.with_columns(
        pl.when(pl.any_horizontal([small[c] for c in rests_on]))
        .then(None)
        .otherwise(pl.col(column))
        .alias(column)
        for column, rests_on in cells.items()
    )
