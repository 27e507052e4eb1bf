"""Households over time on SQLite and PostgreSQL: visits, the registry, rounds, progress and follow-ups."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tasks.ingest import household_views as hv
from tasks.ingest import households as hh
from tasks.ingest.contract import TARGET
from tasks.platform.catalog import Catalog

BASELINE, FOLLOW_UP = "baseline", "2026-Q2"  # the label order is the reverse of the collection order
KANYA_1 = ("Mitooma", "C1", "Kanyabwanga")
KANYA_2 = ("Mitooma", "C2", "Kanyabwanga")  # the same village name in another cluster
KASHAKA = ("Rubirizi", "C3", "Kashaka")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        yield Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
        return
    cat = Catalog(request.getfixturevalue("pg_url"))
    yield cat
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM household_registry")
        conn.exec_driver_sql("DELETE FROM visits")
        conn.exec_driver_sql("DELETE FROM ingestions")
    cat.engine.dispose()


def land(catalog: Catalog, ingestion_id: str) -> str:
    catalog.add_ingestion(
        id=ingestion_id,
        source="test",
        door="cli",
        sha256=hashlib.sha256(ingestion_id.encode()).hexdigest(),
        size_bytes=10,
        raw_key=f"raw/{ingestion_id}.enc",
        status="running",
    )
    return ingestion_id


def identity(ingestion_id: str, household: str, survey_round: str) -> str:
    return hashlib.md5(f"{ingestion_id}|{household}|{survey_round}".encode()).hexdigest()  # noqa: S324


def frame(
    ingestion_id: str,
    survey_round: str,
    submitted: str,
    rows: Sequence[tuple[str, tuple[str, str, str], str | None, str | None]],
    **extra: Sequence[Any],
) -> pl.DataFrame:
    """Accepted rows of (household, village, observed status, risk band) as the flow would pass them."""
    return pl.DataFrame(
        {
            "household_pseudonym": [h for h, *_ in rows],
            "survey_round": [survey_round] * len(rows),
            "_identity": [identity(ingestion_id, h, survey_round) for h, *_ in rows],
            "submitted_at": [submitted] * len(rows),
            "district": [v[0] for _, v, *_ in rows],
            "cluster": [v[1] for _, v, *_ in rows],
            "village": [v[2] for _, v, *_ in rows],
            "progress_status": [s for _, _, s, _ in rows],
            "risk_band": [b for *_, b in rows],
            "p_vulnerable": [0.5] * len(rows),
            "model_version": ["3"] * len(rows),
            "household_size": [5] * len(rows),
            "agriculture_land": [1.5] * len(rows),
            "vsla_profits_usd": [20.0] * len(rows),
            TARGET: [1.9] * len(rows),
            **{name: list(values) for name, values in extra.items()},
        },
        schema_overrides={"progress_status": pl.String, "risk_band": pl.String},
    )


BASELINE_ROWS = [
    ("h1", KANYA_1, "Struggling", "High"),
    ("h2", KANYA_1, "At Risk", "Medium"),
    ("h3", KANYA_2, "Severely Struggling", "Critical"),
    ("h4", KANYA_2, "On Track", "Low"),
    ("h5", KASHAKA, "Struggling", "High"),
    ("h6", KASHAKA, "At Risk", "Medium"),
]
FOLLOW_UP_ROWS = [
    ("h1", KASHAKA, "At Risk", "Medium"),  # moved village; improved
    ("h2", KANYA_1, "Struggling", "High"),  # worsened
    ("h3", KANYA_2, "Severely Struggling", "High"),  # unchanged status, band moved
    ("h7", KANYA_1, "On Track", "Low"),  # new in the follow-up
]


def two_rounds(catalog: Catalog) -> None:
    """Baseline (six households) and a follow-up (three of them and one new), both final."""
    for ingestion_id, survey_round, submitted, rows in (
        ("ing-a", BASELINE, "2025-03-01T09:00:00Z", BASELINE_ROWS),
        ("ing-b", FOLLOW_UP, "2026-05-02T09:00:00+03:00", FOLLOW_UP_ROWS),
    ):
        land(catalog, ingestion_id)
        hh.record_visits(catalog, ingestion_id, frame(ingestion_id, survey_round, submitted, rows))
        hh.finalise_ingestion(catalog, ingestion_id)


def registry(catalog: Catalog) -> list[tuple[Any, ...]]:
    with catalog.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM household_registry ORDER BY household")]


def counts(catalog: Catalog) -> list[tuple[str, int, int, int]]:
    return [(r["round"], r["households"], r["visits"], r["ingestions"]) for r in hh.rounds(catalog)]


def registry_row(catalog: Catalog, household: str) -> dict[str, Any]:
    with catalog.engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT * FROM household_registry WHERE household = %s"
            if catalog.engine.dialect.name == "postgresql"
            else "SELECT * FROM household_registry WHERE household = ?",
            (household,),
        ).one()
    return dict(found._mapping)


def test_record_then_finalise_fills_the_registry_and_rounds(catalog: Catalog) -> None:
    land(catalog, "ing-a")
    outcome = hh.record_visits(catalog, "ing-a", frame("ing-a", BASELINE, "2025-03-01", BASELINE_ROWS))
    assert outcome == hh.VisitOutcome(recorded=6)
    assert hh.rounds(catalog) == [] and registry(catalog) == []  # pending visits are not counted
    assert hh.finalise_ingestion(catalog, "ing-a") == hh.FinaliseOutcome(finalised=6, households=6)
    land(catalog, "ing-b")
    hh.record_visits(catalog, "ing-b", frame("ing-b", FOLLOW_UP, "2026-05-02", FOLLOW_UP_ROWS))
    hh.finalise_ingestion(catalog, "ing-b")

    assert counts(catalog) == [(BASELINE, 6, 6, 1), (FOLLOW_UP, 4, 4, 1)]  # collection order, not label order
    assert hh.current_round(catalog) == FOLLOW_UP
    h1 = registry_row(catalog, "h1")
    assert (h1["first_round"], h1["last_round"], h1["visits"]) == (BASELINE, FOLLOW_UP, 2)
    assert (h1["first_district"], h1["first_cluster"], h1["first_village"]) == KANYA_1
    assert (h1["district"], h1["cluster"], h1["village"]) == KASHAKA
    assert (h1["observed_status"], h1["risk_band"], h1["model_version"]) == ("At Risk", "Medium", "3")
    assert registry_row(catalog, "h4")["last_round"] == BASELINE
    assert len(registry(catalog)) == 7

    latest = hh.latest_visits(catalog)
    assert latest.height == 7 and latest["household"].is_unique().all()
    assert dict(zip(latest["household"], latest["survey_round"], strict=True))["h1"] == FOLLOW_UP
    assert latest.schema["collected_at"] == pl.Datetime("us", "UTC")
    assert set(hh.latest_visits(catalog, [BASELINE])["survey_round"]) == {BASELINE}
    assert hh.latest_visits(catalog, [BASELINE]).height == 6
    assert hh.latest_visits(catalog, []).height == 0


def test_a_rerun_of_the_same_ingestion_changes_nothing(catalog: Catalog) -> None:
    two_rounds(catalog)
    before = (counts(catalog), registry(catalog))
    rows = frame("ing-b", FOLLOW_UP, "2026-05-02T09:00:00+03:00", FOLLOW_UP_ROWS)
    assert hh.record_visits(catalog, "ing-b", rows).recorded == 0  # its visits are final already
    hh.finalise_ingestion(catalog, "ing-b")
    hh.finalise_ingestion(catalog, "ing-b")
    assert (counts(catalog), registry(catalog)) == before


def test_a_crash_then_discard_or_rerun_equals_a_clean_run(catalog: Catalog) -> None:
    two_rounds(catalog)
    clean = (counts(catalog), registry(catalog))
    land(catalog, "ing-c")
    late = frame("ing-c", FOLLOW_UP, "2026-05-09", [("h4", KANYA_2, "On Track", "Low")])
    hh.record_visits(catalog, "ing-c", late)  # the run crashes before finalising
    assert (counts(catalog), registry(catalog)) == clean
    assert hh.discard_ingestion(catalog, "ing-c") == 1
    assert (counts(catalog), registry(catalog)) == clean

    hh.record_visits(catalog, "ing-c", late)  # crash, then the re-run records and finalises
    assert hh.record_visits(catalog, "ing-c", late).recorded == 1
    hh.finalise_ingestion(catalog, "ing-c")
    assert counts(catalog) == [(BASELINE, 6, 6, 1), (FOLLOW_UP, 5, 5, 2)]
    incremental = registry(catalog)
    assert hh.rebuild_registry(catalog) == 7
    assert registry(catalog) == incremental  # incremental rebuilds equal a full one
    hh.rebuild_registry(catalog, ["h4", "h1"])
    assert registry(catalog) == incremental


def test_repeated_in_round_flags_exactly_the_colliding_rows(catalog: Catalog) -> None:
    two_rounds(catalog)
    land(catalog, "ing-d")
    hh.record_visits(
        catalog, "ing-d", frame("ing-d", BASELINE, "2025-03-04", [("h8", KASHAKA, "At Risk", "Low")])
    )
    land(catalog, "ing-c")
    edit_of_h5 = identity("ing-a", "h5", BASELINE)
    rows = frame(
        "ing-c",
        BASELINE,
        "2025-03-05",
        [
            ("h1", KANYA_1, "On Track", "Low"),  # h1 has a final baseline visit of ing-a
            ("h9", KANYA_1, "On Track", "Low"),  # new household
            ("h8", KASHAKA, "Struggling", "High"),  # ing-d holds h8 pending
            ("h5", KASHAKA, "On Track", "Low"),  # an API edit of h5's baseline visit
        ],
        replaces_identity=[None, None, None, edit_of_h5],
    )
    follow = frame("ing-c", FOLLOW_UP, "2026-05-05", [("h4", KANYA_2, "At Risk", "Medium")])
    both = pl.concat([rows, follow], how="diagonal_relaxed")
    assert hh.repeated_in_round(catalog, "ing-c", both).to_list() == [True, False, True, False, False]
    assert hh.repeated_in_round(catalog, "ing-a", rows).to_list() == [False, False, True, False]  # its own

    outcome = hh.record_visits(catalog, "ing-c", both)
    assert outcome.held == {identity("ing-c", "h1", BASELINE)}
    assert outcome.recorded == 4
    assert [(x["row_identity"], x["earlier_ingestion_id"]) for x in outcome.linked] == [
        (identity("ing-c", "h8", BASELINE), "ing-d")
    ]
    hh.finalise_ingestion(catalog, "ing-d")  # the first of the linked pair to finish stays
    done = hh.finalise_ingestion(catalog, "ing-c")
    assert done.repeated == {identity("ing-c", "h8", BASELINE)} and done.finalised == 3
    h5 = registry_row(catalog, "h5")
    assert (h5["observed_status"], h5["visits"]) == ("On Track", 1)  # the edit replaced its visit
    assert counts(catalog) == [
        (BASELINE, 8, 9, 3),
        (FOLLOW_UP, 5, 5, 2),
    ]  # h5's first visit stays, superseded


def test_supersede_keeps_the_history_and_moves_the_latest_status(catalog: Catalog) -> None:
    two_rounds(catalog)
    old = hh.visit_in_round(catalog, "h4", BASELINE)
    assert old is not None and hh.visit_in_round(catalog, "h4", FOLLOW_UP) is None
    land(catalog, "ing-r")
    approved = frame("ing-r", BASELINE, "2025-03-09", [("h4", KANYA_2, "Struggling", "High")]).with_columns(
        pl.lit("ing-r").alias("ingestion_id")
    )
    new = hh.supersede(catalog, old, approved)
    assert hh.supersede(catalog, old, approved) == new  # an approval retried
    assert hh.visit_in_round(catalog, "h4", BASELINE) == new
    assert registry_row(catalog, "h4")["observed_status"] == "Struggling"
    assert counts(catalog) == [(BASELINE, 6, 7, 2), (FOLLOW_UP, 4, 4, 1)]  # the old visit stays, superseded
    with catalog.engine.connect() as conn:
        history = conn.exec_driver_sql(
            "SELECT id, superseded_by, observed_status FROM visits WHERE household = 'h4' ORDER BY id"
        ).all()
    assert [tuple(r) for r in history] == [(old, new, "On Track"), (new, None, "Struggling")]
    other = frame("ing-r", FOLLOW_UP, "2026-05-09", [("h4", KANYA_2, "Struggling", "High")]).with_columns(
        pl.lit("ing-r").alias("ingestion_id")
    )
    with pytest.raises(ValueError, match="same household and round"):
        hh.supersede(catalog, new, other)


def test_update_predictions_refreshes_the_registry(catalog: Catalog) -> None:
    two_rounds(catalog)
    scored = pl.DataFrame(
        {
            "row_identity": [
                identity("ing-b", "h1", FOLLOW_UP),
                identity("ing-a", "h1", BASELINE),
                "unknown",
            ],
            "p_vulnerable": [0.91, 0.2, 0.5],
            "risk_band": ["Critical", "Low", "Low"],
            "model_version": ["4", "4", "4"],
        }
    )
    assert hh.update_predictions(catalog, scored) == 2
    h1 = registry_row(catalog, "h1")
    assert (h1["p_vulnerable"], h1["risk_band"], h1["model_version"]) == (0.91, "Critical", "4")


def test_followups_list_the_missing_households_per_village(catalog: Catalog) -> None:
    two_rounds(catalog)
    missing = hh.followups(catalog, FOLLOW_UP)
    assert missing["household"].to_list() == ["h4", "h5", "h6"]
    assert missing.filter(pl.col("household") == "h4").row(0, named=True)["cluster"] == "C2"
    only_kanya_2 = hh.followups(catalog, FOLLOW_UP, [KANYA_2])
    assert only_kanya_2["household"].to_list() == ["h4"]
    assert hh.followups(catalog, FOLLOW_UP, [("Mitooma", "C3", "Kanyabwanga")]).height == 0
    assert hh.followups(catalog, BASELINE).height == 0  # nothing came before the first round
    # a round not begun yet: every household is due, at its last village
    due = hh.followups(catalog, "2026-Q4")
    assert due.height == 7
    assert due.filter(pl.col("household") == "h1")["village"].item() == KASHAKA[2]


def _random_rounds(catalog: Catalog, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    statuses = np.array(hh.STATUS_ORDER)
    bands = np.array(["Low", "Medium", "High", "Critical"])
    villages = [KANYA_1, KANYA_2, KASHAKA]
    frames = []
    for ingestion_id, survey_round, submitted, keep in (
        ("ing-a", BASELINE, "2025-03-01", 0.0),
        ("ing-b", FOLLOW_UP, "2026-05-02", 0.25),
    ):
        ids = [f"h{i:03d}" for i in range(300) if rng.random() >= keep]
        rows = [
            (h, villages[int(rng.integers(3))], str(rng.choice(statuses)), str(rng.choice(bands)))
            for h in ids
        ]
        rows = [(h, v, s if rng.random() > 0.05 else None, b) for h, v, s, b in rows]
        land(catalog, ingestion_id)
        batch = frame(ingestion_id, survey_round, submitted, rows)
        hh.record_visits(catalog, ingestion_id, batch)
        hh.finalise_ingestion(catalog, ingestion_id)
        frames.append(batch)
    return frames[0], frames[1]


@pytest.mark.parametrize("district", [None, "Mitooma"])
def test_transitions_equal_a_pandas_crosstab(catalog: Catalog, district: str | None) -> None:
    base, follow = _random_rounds(catalog, seed=13)
    progress = hh.transitions(catalog, BASELINE, FOLLOW_UP, district)

    a = base.to_pandas().set_index("household_pseudonym")
    b = follow.to_pandas().set_index("household_pseudonym")
    if district is not None:
        a = a[a["district"] == district]
    pairs = a.join(b, how="inner", lsuffix="_from", rsuffix="_to")
    known = pairs.dropna(subset=["progress_status_from", "progress_status_to"])
    table = pd.crosstab(known["progress_status_from"], known["progress_status_to"])
    expected = {
        str(f): {str(t): int(n) for t, n in row.items() if n} for f, row in table.iterrows() if row.sum()
    }
    bands = pd.crosstab(pairs["risk_band_from"], pairs["risk_band_to"])
    expected_bands = {str(f): {str(t): int(n) for t, n in row.items() if n} for f, row in bands.iterrows()}
    rank = {s: i for i, s in enumerate(hh.STATUS_ORDER)}
    change = known["progress_status_to"].map(rank) - known["progress_status_from"].map(rank)
    follow_in = b if district is None else b[b["district"] == district]

    assert progress["rounds"] == [BASELINE, FOLLOW_UP]
    assert progress["households"] == {"from": len(a), "to": len(follow_in), "both": len(pairs)}
    assert progress["transitions"] == expected
    assert progress["risk_transitions"] == expected_bands
    assert (progress["improved"], progress["worsened"], progress["unchanged"]) == (
        int((change > 0).sum()),
        int((change < 0).sum()),
        int((change == 0).sum()),
    )


def test_transitions_refuse_unknown_rounds(catalog: Catalog) -> None:
    two_rounds(catalog)
    with pytest.raises(hh.UnknownRound, match="2027-Q1"):
        hh.transitions(catalog, BASELINE, "2027-Q1")
    with pytest.raises(hh.UnknownRound):
        hh.transitions(catalog, BASELINE, BASELINE)


# ---- distinct households for the dashboard (tasks.ingest.household_views) -----------------------------------


def test_the_cube_counts_each_household_once_at_its_latest_visit(catalog: Catalog) -> None:
    two_rounds(catalog)
    both = hv.household_cube(catalog, [FOLLOW_UP, BASELINE])  # the order asked for does not matter
    latest = hh.latest_visits(catalog)  # the registry's own query
    assert int(both["households"].sum()) == latest.height == 7  # h1-h7, not 6 + 4 rows
    assert int(both["visits"].sum()) == 10
    per_household = both.group_by("district", "cluster", "village", "status", "risk_band").agg(
        pl.col("households").sum()
    )
    expected = latest.group_by(
        "district", "cluster", "village", pl.col("observed_status").alias("status"), "risk_band"
    ).agg(pl.len().alias("households"))
    assert sorted(per_household.filter(pl.col("households") > 0).rows()) == sorted(expected.rows())
    rounds_seen = both.group_by("survey_round").agg(pl.col("round_households").sum())
    assert dict(rounds_seen.iter_rows()) == {BASELINE: 6, FOLLOW_UP: 4}
    assert (
        int(both["vulnerable"].sum())
        == latest["observed_status"].is_in(["Struggling", "Severely Struggling"]).sum()
    )
    assert set(both["source"]) == {"test"}
    for one, households in ((BASELINE, 6), (FOLLOW_UP, 4)):
        alone = hv.household_cube(catalog, [one])
        assert int(alone["households"].sum()) == int(alone["visits"].sum()) == households
    assert hv.household_cube(catalog, []).height == 0
    assert hv.household_cube(catalog, ["2030-Q1"]).height == 0


def test_the_same_households_in_two_rounds_count_as_the_first_round(catalog: Catalog) -> None:
    for ingestion_id, survey_round, submitted in (
        ("ing-a", BASELINE, "2025-03-01"),
        ("ing-b", FOLLOW_UP, "2026-05-02"),
    ):
        land(catalog, ingestion_id)
        hh.record_visits(catalog, ingestion_id, frame(ingestion_id, survey_round, submitted, BASELINE_ROWS))
        hh.finalise_ingestion(catalog, ingestion_id)
    cube = hv.household_cube(catalog, [BASELINE, FOLLOW_UP])
    assert int(cube["households"].sum()) == len(BASELINE_ROWS) and int(cube["visits"].sum()) == 12
    assert int(cube["household_visits"].sum()) == 12
    listed = hv.households(catalog, hv.Selection(rounds=(BASELINE, FOLLOW_UP)))
    assert listed.height == 6 and listed["household_pseudonym"].is_unique().all()
    assert set(listed["survey_round"]) == {FOLLOW_UP} and set(listed["visits"]) == {2}


def test_households_filter_after_choosing_the_latest_visit(catalog: Catalog) -> None:
    two_rounds(catalog)
    everything = hv.households(catalog, hv.Selection(rounds=(BASELINE, FOLLOW_UP)))
    assert everything.height == 7 and int(everything["visits"].sum()) == 10
    assert everything["household_pseudonym"].is_unique().all()
    # h1 moved from Kanyabwanga (C1) to Kashaka: it is listed in Kashaka only, at its follow-up visit
    kashaka = hv.households(catalog, hv.Selection(rounds=(BASELINE, FOLLOW_UP), villages=(KASHAKA[2],)))
    assert sorted(kashaka["household_pseudonym"]) == ["h1", "h5", "h6"]
    assert kashaka.filter(pl.col("household_pseudonym") == "h1")["survey_round"].item() == FOLLOW_UP
    in_baseline = hv.households(catalog, hv.Selection(rounds=(BASELINE,), villages=(KASHAKA[2],)))
    assert sorted(in_baseline["household_pseudonym"]) == ["h5", "h6"]
    # the status filter reads the latest visit: h2 was At Risk at baseline, Struggling at the follow-up
    struggling = hv.households(catalog, hv.Selection(rounds=(BASELINE, FOLLOW_UP), statuses=("Struggling",)))
    assert sorted(struggling["household_pseudonym"]) == ["h2", "h5"]
    high = hv.households(catalog, hv.Selection(rounds=(BASELINE, FOLLOW_UP), bands=("High",)))
    assert sorted(high["household_pseudonym"]) == [
        "h2",
        "h3",
        "h5",
    ]  # h2, h3 at the follow-up, h5 at baseline
    assert (
        hv.households(catalog, hv.Selection(rounds=(BASELINE, FOLLOW_UP), bands=("High",)), limit=1).height
        == 1
    )
    assert hv.households(catalog, hv.Selection(rounds=())).height == 0


def test_households_are_listed_most_vulnerable_first(catalog: Catalog) -> None:
    rows = [(f"h{i}", KANYA_1, "At Risk", "Medium") for i in range(5)]
    land(catalog, "ing-p")
    hh.record_visits(
        catalog,
        "ing-p",
        frame("ing-p", BASELINE, "2025-03-01", rows, p_vulnerable=[0.2, None, 0.9, 0.5, 0.7]),
    )
    hh.finalise_ingestion(catalog, "ing-p")
    listed = hv.households(catalog, hv.Selection(rounds=(BASELINE,)), limit=4)
    assert listed["household_pseudonym"].to_list() == ["h2", "h4", "h3", "h0"]  # unscored last


def test_round_order_is_the_collection_order_of_rounds(catalog: Catalog) -> None:
    assert hv.round_order(catalog) == []
    two_rounds(catalog)
    assert hv.round_order(catalog) == [r["round"] for r in hh.rounds(catalog)] == [BASELINE, FOLLOW_UP]


def test_the_catalog_version_moves_with_every_counted_change(catalog: Catalog) -> None:
    seen = [hv.catalog_version(catalog)]

    def moved() -> bool:
        seen.append(hv.catalog_version(catalog))
        return seen[-1] != seen[-2]

    land(catalog, "ing-a")
    assert moved()  # a new ingestion
    hh.record_visits(catalog, "ing-a", frame("ing-a", BASELINE, "2025-03-01", BASELINE_ROWS))
    assert moved()  # pending visits
    hh.finalise_ingestion(catalog, "ing-a")
    assert moved()  # they count now
    assert not moved()  # nothing happened
    land(catalog, "ing-r")
    moved()
    approved = frame("ing-r", BASELINE, "2025-03-09", [("h4", KANYA_2, "Struggling", "High")]).with_columns(
        pl.lit("ing-r").alias("ingestion_id")
    )
    hh.supersede(catalog, hh.visit_in_round(catalog, "h4", BASELINE) or 0, approved)
    assert moved()  # a review approval replaced a visit
    hh.reassign_round(catalog, "ing-a", FOLLOW_UP)
    assert moved()


def _hex(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:32]


def test_the_timeline_lists_every_visit_by_round_and_marks_replaced_ones(catalog: Catalog) -> None:
    one, other = _hex(1), _hex(2)
    rows = [(one, KANYA_1, "Struggling", "High"), (other, KANYA_1, "On Track", "Low")]
    for ingestion_id, survey_round, submitted, size in (
        ("ing-b", FOLLOW_UP, "2026-05-02", 6),  # landed first, collected later
        ("ing-a", BASELINE, "2025-03-01", 4),
    ):
        land(catalog, ingestion_id)
        batch = frame(ingestion_id, survey_round, submitted, rows, household_size=[size, 3])
        hh.record_visits(catalog, ingestion_id, batch)
        hh.finalise_ingestion(catalog, ingestion_id)
    land(catalog, "ing-r")
    approved = frame(
        "ing-r", FOLLOW_UP, "2026-05-09", [(one, KANYA_1, "At Risk", "Medium")], household_size=[7]
    )
    hh.supersede(
        catalog,
        hh.visit_in_round(catalog, one, FOLLOW_UP) or 0,
        approved.with_columns(pl.lit("ing-r").alias("ingestion_id")),
    )

    visits = hv.timeline(catalog, f" HH-{one[:10].upper()} ")
    assert visits["household_pseudonym"].unique().to_list() == [one]
    assert visits.select("survey_round", "household_size", "superseded", "status").rows() == [
        (BASELINE, 4, False, "Struggling"),
        (FOLLOW_UP, 6, True, "Struggling"),
        (FOLLOW_UP, 7, False, "At Risk"),
    ]
    changes = hv.answer_changes(visits)
    assert changes["answer"][0] == "household_size"  # 4 → 7, the only answer that changed
    first = changes.row(0, named=True)
    assert (first["first"], first["latest"], first["change"]) == (4.0, 7.0, 3.0)
    assert first["relative"] == pytest.approx(3 / 7)
    assert changes["relative"].to_list()[1:] == [0.0, 0.0, 0.0]
    assert hv.timeline(catalog, "hh-0000000000").height == 0
    for bad in ("h1", "hh-12345", "hh-xyz0123456", ""):
        with pytest.raises(hv.BadReference, match="not a household reference"):
            hv.timeline(catalog, bad)
