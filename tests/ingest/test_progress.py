"""Progress between two rounds on SQLite and PostgreSQL, checked against an independent pandas computation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tasks.ingest import households as hh
from tasks.ingest import progress
from tasks.ingest.contract import TARGET
from tasks.platform.catalog import Catalog

BASELINE, FOLLOW_UP = "baseline", "2026-Q2"  # the label order is the reverse of the collection order
VILLAGES = (
    ("Mitooma", "C1", "Kanyabwanga"),
    ("Mitooma", "C2", "Kanyabwanga"),  # the same village name in another cluster
    ("Mitooma", "C2", "Rwoburunga"),
    ("Rubanda", "C3", "Kashaka"),
    ("Rubanda", "C4", "Nyamweru"),
)
BANDS = ("Low", "Medium", "High", "Critical")
Row = tuple[str, tuple[str, str, str], str | None, str | None]  # household, village, status, risk band


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


def write_round(
    catalog: Catalog,
    ingestion_id: str,
    survey_round: str,
    submitted: str,
    rows: Sequence[Row],
    model_version: str = "3",
) -> pl.DataFrame:
    """Land an ingestion and record its rows as final visits, as the ingest flow does; return the rows."""
    catalog.add_ingestion(
        id=ingestion_id,
        source="test",
        door="cli",
        sha256=hashlib.sha256(ingestion_id.encode()).hexdigest(),
        size_bytes=10,
        raw_key=f"raw/{ingestion_id}.enc",
        status="running",
    )
    frame = pl.DataFrame(
        {
            "household_pseudonym": [h for h, *_ in rows],
            "survey_round": [survey_round] * len(rows),
            "_identity": [
                hashlib.md5(f"{ingestion_id}|{h}".encode()).hexdigest()  # noqa: S324
                for h, *_ in rows
            ],
            "_row": list(range(len(rows))),
            "submitted_at": [submitted] * len(rows),
            "district": [v[0] for _, v, *_ in rows],
            "cluster": [v[1] for _, v, *_ in rows],
            "village": [v[2] for _, v, *_ in rows],
            "progress_status": [s for _, _, s, _ in rows],
            "risk_band": [b for *_, b in rows],
            "p_vulnerable": [0.5] * len(rows),
            "model_version": [model_version] * len(rows),
            TARGET: [1.9] * len(rows),
        },
        schema_overrides={"progress_status": pl.String, "risk_band": pl.String},
    )
    hh.record_visits(catalog, ingestion_id, frame)
    hh.finalise_ingestion(catalog, ingestion_id)
    return frame


def random_rounds(
    catalog: Catalog, seed: int, households: int = 400, versions: tuple[str, str] = ("3", "3")
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A baseline and a follow-up: ~80% found again (some moved village), new households, a few without status."""
    rng = np.random.default_rng(seed)

    def status() -> str | None:
        return None if rng.random() < 0.04 else str(rng.choice(hh.STATUS_ORDER))

    base: list[Row] = [
        (f"hh{i:04d}{'x' * 20}", VILLAGES[int(rng.integers(len(VILLAGES)))], status(), str(rng.choice(BANDS)))
        for i in range(households)
    ]
    follow: list[Row] = []
    for household, village, _, _ in base:
        if rng.random() < 0.8:
            moved = VILLAGES[int(rng.integers(len(VILLAGES)))] if rng.random() < 0.1 else village
            follow.append((household, moved, status(), str(rng.choice(BANDS))))
    follow += [(f"new{i:04d}", VILLAGES[i % len(VILLAGES)], status(), "Low") for i in range(30)]
    a = write_round(catalog, "ing-a", BASELINE, "2025-03-01T09:00:00Z", base, versions[0])
    b = write_round(catalog, "ing-b", FOLLOW_UP, "2026-05-02T09:00:00Z", follow, versions[1])
    return a.to_pandas(), b.to_pandas()


def expected_pairs(base: pd.DataFrame, follow: pd.DataFrame) -> pd.DataFrame:
    """Households in both rounds, the place of the baseline, and whether they moved out or fell back."""
    pairs = base.set_index("household_pseudonym").join(
        follow.set_index("household_pseudonym"), how="inner", lsuffix="_from", rsuffix="_to"
    )
    vulnerable = {"Struggling", "Severely Struggling"}
    not_vulnerable = {"At Risk", "On Track"}
    before, after = pairs["progress_status_from"], pairs["progress_status_to"]
    pairs["moved_out"] = before.isin(vulnerable) & after.isin(not_vulnerable)
    pairs["fell_back"] = before.isin(not_vulnerable) & after.isin(vulnerable)
    return pairs.rename(
        columns={"district_from": "district", "cluster_from": "cluster", "village_from": "village"}
    )


@pytest.mark.parametrize("level", ["district", "cluster", "village"])
def test_moved_out_and_fell_back_per_place_equal_pandas(catalog: Catalog, level: str) -> None:
    base, follow = random_rounds(catalog, seed=5)
    pairs = expected_pairs(base, follow)
    keys = list(progress.LEVELS[level])
    grouped = pairs.groupby(keys).agg(
        both=("moved_out", "size"), moved_out=("moved_out", "sum"), fell_back=("fell_back", "sum")
    )
    grouped["net"] = grouped["moved_out"] - grouped["fell_back"]
    expected = {
        key if isinstance(key, tuple) else (key,): (
            int(r.both),
            int(r.moved_out),
            int(r.fell_back),
            int(r.net),
        )
        for key, r in grouped.iterrows()
    }

    found = progress.by_place(progress.compare(catalog, BASELINE, FOLLOW_UP).places, level)
    got = {
        tuple(r[k] for k in keys): (r["both"], r["moved_out"], r["fell_back"], r["net"])
        for r in found.iter_rows(named=True)
    }
    assert got == expected
    assert found["moved_out_share"].to_list() == pytest.approx((found["moved_out"] / found["both"]).to_list())
    if level == "village":  # the same village name in two clusters stays two villages
        assert {k for k in got if k[2] == "Kanyabwanga"} == {VILLAGES[0], VILLAGES[1]}


def test_transitions_equal_a_crosstab_and_the_cli_query(catalog: Catalog) -> None:
    base, follow = random_rounds(catalog, seed=7)
    pairs = expected_pairs(base, follow)
    known = pairs.dropna(subset=["progress_status_from", "progress_status_to"])
    crosstab = pd.crosstab(known["progress_status_from"], known["progress_status_to"])
    expected = {str(f): {str(t): int(n) for t, n in row.items() if n} for f, row in crosstab.iterrows()}
    bands = pd.crosstab(pairs["risk_band_from"], pairs["risk_band_to"])
    expected_bands = {str(f): {str(t): int(n) for t, n in row.items() if n} for f, row in bands.iterrows()}

    compared = progress.compare(catalog, BASELINE, FOLLOW_UP)
    assert progress.table(compared.moves, "status_from", "status_to", hh.STATUS_ORDER) == expected
    assert progress.table(compared.moves, "band_from", "band_to") == expected_bands
    cells = progress.matrix(expected, hh.STATUS_ORDER)
    full = crosstab.reindex(index=hh.STATUS_ORDER, columns=hh.STATUS_ORDER, fill_value=0)
    assert cells["from"].unique(maintain_order=True).to_list() == list(hh.STATUS_ORDER)  # worst first
    for before, after, n, row_total, share in cells.iter_rows():
        assert (n, row_total) == (int(full.loc[before, after]), int(full.loc[before].sum()))
        assert share == pytest.approx(n / row_total)
    # the CLI's query counts the same households the same way
    cli = hh.transitions(catalog, BASELINE, FOLLOW_UP)
    summary = progress.summary(compared.moves)
    assert cli["transitions"] == expected and cli["risk_transitions"] == expected_bands
    assert (summary["both"], summary["improved"], summary["worsened"], summary["unchanged"]) == (
        len(pairs),
        cli["improved"],
        cli["worsened"],
        cli["unchanged"],
    )


def test_fell_back_list_and_district_filter(catalog: Catalog) -> None:
    base, follow = random_rounds(catalog, seed=11)
    pairs = expected_pairs(base, follow)
    fell = pairs[pairs["fell_back"]]
    compared = progress.compare(catalog, BASELINE, FOLLOW_UP)
    got = compared.fell_back
    assert got["household"].to_list() == sorted(
        fell.index, key=lambda h: (*fell.loc[h, ["district", "cluster", "village"]], h)
    )
    for row in got.iter_rows(named=True):
        source = fell.loc[row["household"]]
        assert (row["district"], row["cluster"], row["village"]) == tuple(
            source[["district", "cluster", "village"]]
        )
        assert (row["status_from"], row["status_to"]) == (
            source["progress_status_from"],
            source["progress_status_to"],
        )
        # the later visit: its row is where the sealed id is read from
        assert (row["ingestion_id"], row["source_row"]) == ("ing-b", source["_row_to"])
    refs = got.select(progress.reference(pl.col("household")))["literal"].to_list()
    assert all(r.startswith("hh-hh") and len(r) == 13 for r in refs)

    only = compared.within("Rubanda")
    assert set(only.fell_back["household"]) == set(fell[fell["district"] == "Rubanda"].index)
    assert progress.summary(only.moves)["both"] == int((pairs["district"] == "Rubanda").sum())
    assert compared.districts() == ["Mitooma", "Rubanda"]


def test_cohort_coverage_by_village(catalog: Catalog) -> None:
    base, follow = random_rounds(catalog, seed=13)
    seen = base.groupby(["district", "cluster", "village"]).size()
    found = (
        base[base["household_pseudonym"].isin(follow["household_pseudonym"])]
        .groupby(["district", "cluster", "village"])
        .size()
    )
    got = progress.coverage(progress.compare(catalog, BASELINE, FOLLOW_UP).places)
    assert {tuple(r[:3]): (r[3], r[4]) for r in got.rows()} == {
        k: (int(n), int(found.get(k, 0))) for k, n in seen.items()
    }
    assert got["coverage"].to_list() == pytest.approx((got["found_again"] / got["seen_first"]).to_list())


def test_suppression_hides_small_cells_and_what_would_reveal_them() -> None:
    places = pl.DataFrame(
        {
            "district": ["A", "B", "C", "D"],
            "cluster": ["a", "b", "c", "d"],
            "village": ["x", "y", "z", "w"],
            "seen_first": [30, 30, 30, 4],
            "found_again": [24, 20, 12, 4],
            "moved_out": [7, 3, 6, 2],
            "fell_back": [5, 6, 0, 1],
        }
    )
    shown = progress.suppress(progress.by_place(places, "village"), 5, progress.PLACE_CELLS)
    cells = {r["district"]: r for r in shown.iter_rows(named=True)}
    # A: every count at least 5
    assert (cells["A"]["both"], cells["A"]["moved_out"], cells["A"]["fell_back"], cells["A"]["net"]) == (
        24,
        7,
        5,
        2,
    )
    assert cells["A"]["net_share"] == pytest.approx(2 / 24)
    # B: 3 moved out is hidden with its share, and the net that would give it back
    assert (
        cells["B"]["moved_out"],
        cells["B"]["moved_out_share"],
        cells["B"]["net"],
        cells["B"]["net_share"],
    ) == (
        None,
        None,
        None,
        None,
    )
    assert (cells["B"]["fell_back"], cells["B"]["both"]) == (6, 20)
    # C: zero is under 5 too
    assert (cells["C"]["fell_back"], cells["C"]["moved_out"], cells["C"]["net"]) == (None, 6, None)
    # D: fewer than 5 seen in both: the whole row
    assert all(cells["D"][c] is None for c in progress.PLACE_CELLS)
    coverage = progress.suppress(progress.coverage(places), 5, progress.COVERAGE_CELLS)
    assert coverage.filter(pl.col("district") == "D").row(0)[3:] == (None, None, None)
    assert progress.suppress(progress.coverage(places), 0, progress.COVERAGE_CELLS).equals(
        progress.coverage(places)
    )
    # a transition cell, and its share, is shown exactly when it holds 5 households or more
    moves = {"Struggling": {"Struggling": 9, "At Risk": 4}, "On Track": {"On Track": 5, "Struggling": 1}}
    cells_frame = progress.suppress(progress.matrix(moves, hh.STATUS_ORDER), 5, progress.MATRIX_CELLS)
    for before, after, n, _, share in cells_frame.iter_rows():
        real = moves.get(before, {}).get(after, 0)
        assert (n, share is None) == ((real, False) if real >= 5 else (None, True))


def test_two_counted_visits_in_one_round_pair_the_latest(catalog: Catalog) -> None:
    """Two rows of one household approved in a round: the later collected one counts, as in the CLI."""
    write_round(catalog, "ing-a", BASELINE, "2025-03-01T09:00:00Z", [("h1", VILLAGES[0], "On Track", "Low")])
    write_round(catalog, "ing-b", FOLLOW_UP, "2026-05-02T09:00:00Z", [("h1", VILLAGES[0], "At Risk", "Low")])
    late = pl.DataFrame(
        {
            "household_pseudonym": ["h1"],
            "survey_round": [FOLLOW_UP],
            "_identity": ["late-h1"],
            "submitted_at": ["2026-05-09T09:00:00Z"],
            "district": [VILLAGES[0][0]],
            "cluster": [VILLAGES[0][1]],
            "village": [VILLAGES[0][2]],
            "progress_status": ["Struggling"],
            "risk_band": ["High"],
        }
    )
    hh.record_final_visits(catalog, "ing-b", late)  # no collision check: a review approval's path
    assert [r["visits"] for r in hh.rounds(catalog)] == [1, 2]
    compared = progress.compare(catalog, BASELINE, FOLLOW_UP)
    assert progress.table(compared.moves, "status_from", "status_to") == {"On Track": {"Struggling": 1}}
    assert compared.fell_back["household"].to_list() == ["h1"]
    assert hh.transitions(catalog, BASELINE, FOLLOW_UP)["transitions"] == {"On Track": {"Struggling": 1}}


def test_model_versions_say_whether_bands_compare_like_with_like(catalog: Catalog) -> None:
    base, follow = random_rounds(catalog, seed=17, households=60, versions=("3", "4"))
    compared = progress.compare(catalog, BASELINE, FOLLOW_UP)
    assert progress.model_versions(compared.versions, compared.rounds).rows() == [
        (BASELINE, "3", len(base)),
        (FOLLOW_UP, "4", len(follow)),
    ]
    note = progress.version_note(compared.versions, BASELINE, FOLLOW_UP)
    assert note is not None and "model v3 (60 visits)" in note and f"model v4 ({len(follow)} visits)" in note
    alike = pl.DataFrame(
        {
            "district": ["A", "A"],
            "survey_round": [BASELINE, FOLLOW_UP],
            "model_version": ["4", "4"],
            "visits": [9, 8],
        }
    )
    assert progress.version_note(alike, BASELINE, FOLLOW_UP) is None
    unscored = alike.with_columns(pl.lit(progress.NOT_SCORED).alias("model_version"))
    assert "no model (9 visits)" in (progress.version_note(unscored, BASELINE, FOLLOW_UP) or "")


def test_compare_refuses_unknown_or_equal_rounds(catalog: Catalog) -> None:
    write_round(catalog, "ing-a", BASELINE, "2025-03-01T09:00:00Z", [("h1", VILLAGES[0], "On Track", "Low")])
    with pytest.raises(hh.UnknownRound, match="2027-Q1"):
        progress.compare(catalog, BASELINE, "2027-Q1")
    with pytest.raises(hh.UnknownRound, match="itself"):
        progress.compare(catalog, BASELINE, BASELINE)
    # the temporary table of a comparison does not outlive it: a second comparison on the pool works
    write_round(catalog, "ing-b", FOLLOW_UP, "2026-05-02T09:00:00Z", [("h1", VILLAGES[0], "At Risk", "Low")])
    for _ in range(2):
        assert progress.summary(progress.compare(catalog, BASELINE, FOLLOW_UP).moves)["unchanged"] == 0


def test_worklist_by_village_counts_households_per_place() -> None:
    due = pl.DataFrame(
        {
            "household": ["a", "b", "c"],
            "district": ["M", "M", "M"],
            "cluster": ["1", "2", "2"],
            "village": ["K", "K", "K"],
        }
    )
    assert progress.worklist_by_village(due).rows() == [("M", "1", "K", 1), ("M", "2", "K", 2)]
