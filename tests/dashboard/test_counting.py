"""Overview, Households and the exports count distinct households, not survey rows, across survey rounds.

Two data dirs, each filled through the real path (land + the ingest flow in-process):
- the same synthetic households twice, as `2025-baseline` then `2026-follow-up` with one non-derived answer
  changed on every row (the issue's acceptance case: both rounds count as the first round's households);
- a synthetic panel of two rounds (households missed, households new, statuses moved), scored by a quick
  champion, checked against an independent polars computation over the catalog's visits.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import streamlit as st
from threadpoolctl import threadpool_limits

from dashboard import cube, exports, rows
from flows.ingest import ingest
from flows.retrain import retrain
from tasks.ingest.contract import VULNERABLE_STATUSES
from tasks.ingest.generate import generate_households, generate_panel, write_households, write_panel
from tasks.ingest.landing import land
from tasks.model.evaluation import evaluate
from tasks.platform.settings import Settings
from tasks.protection import audit
from tasks.runtime import runtime_for
from tests.dashboard.test_dashboard_pages import _add_users, _point_env, metrics, signed_in, texts

pytestmark = pytest.mark.usefixtures("prefect_server")

BASELINE, FOLLOW_UP = "2025-baseline", "2026-follow-up"


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):  # see test_dashboard_pages: small fits spin-wait on a busy machine
        yield


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _ingest(rt: Any, path: Path, survey_round: str) -> dict[str, Any]:
    landed = land(rt, path, source_name=path.name, door="cli", survey_round=survey_round)
    return dict(ingest(landed.ingestion_id))


@pytest.fixture(scope="module")
def same_set(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[dict[str, Any]]:
    """120 households as the baseline, then the same households with phones_owned + 1 a year later.

    The follow-up is a new survey of each household: new instance ids (the same id with other answers would
    be an edit conflict, not a visit).
    """
    base = tmp_path_factory.mktemp("same_set")
    with pytest.MonkeyPatch.context() as mp:
        _point_env(mp, base / "data", base / "keys.json")
        rt = runtime_for(Settings())
        frame = generate_households(120, seed=83).frame
        later = frame.with_columns(
            pl.col("phones_owned") + 1,
            pl.col("instance_id").map_elements(
                lambda old: f"uuid:{uuid.uuid5(uuid.NAMESPACE_URL, old)}", return_dtype=pl.String
            ),
            (pl.col("submitted_at").str.to_datetime(time_zone="UTC") + timedelta(days=365))
            .dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            .alias("submitted_at"),
        )
        first = _ingest(rt, write_households(frame, base / "baseline.csv"), BASELINE)
        second = _ingest(rt, write_households(later, base / "follow-up.csv"), FOLLOW_UP)
        _add_users(rt)
        yield {"data_dir": base / "data", "key_file": base / "keys.json", "reports": (first, second)}


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[dict[str, Any]]:
    """Two panel rounds: the baseline, a quick champion (which scores it), then the follow-up, scored."""
    base = tmp_path_factory.mktemp("panel")
    with pytest.MonkeyPatch.context() as mp:
        _point_env(mp, base / "data", base / "keys.json")
        mp.setattr("flows.retrain.evaluate", lambda frame: evaluate(frame, params={"max_iter": 15}, folds=3))
        rt = runtime_for(Settings())
        written = write_panel(generate_panel(300, 2, seed=37), base / "panel")
        first = _ingest(rt, written[0].path, BASELINE)
        retrain(force=True)
        second = _ingest(rt, written[1].path, FOLLOW_UP)
        _add_users(rt)
        yield {"data_dir": base / "data", "key_file": base / "keys.json", "reports": (first, second)}


def _use(data: dict[str, Any], mp: pytest.MonkeyPatch) -> Any:
    _point_env(mp, data["data_dir"], data["key_file"])
    return runtime_for(Settings())


def _visits(rt: Any) -> pl.DataFrame:
    """The catalog's visits table as it is stored."""
    with rt.catalog.engine.connect() as connection:
        return pl.read_database("SELECT * FROM visits", connection, infer_schema_length=None)


def expected(visits: pl.DataFrame, chosen: list[str]) -> dict[str, Any]:
    """Households, visits and the headline figures computed here, independently, over the visits table."""
    final = visits.filter(pl.col("state") == "final")
    order = (
        final.group_by("survey_round")
        .agg(pl.col("collected_at").min().alias("started"))
        .sort("started", "survey_round")["survey_round"]
        .to_list()
    )
    live = final.filter(
        pl.col("superseded_by").is_null() & pl.col("survey_round").is_in(chosen)
    ).with_columns(
        pl.col("survey_round").replace_strict({r: i for i, r in enumerate(order)}).alias("at"),
        pl.coalesce("observed_status", "predicted_status").alias("status"),
    )
    latest = live.sort(["at", "collected_at", "id"], descending=True).unique("household", keep="first")
    scored = latest.filter(pl.col("p_vulnerable").is_not_null())
    return {
        "order": order,
        "households": latest.height,
        "visits": live.height,
        "vulnerable": latest.filter(pl.col("status").is_in(list(VULNERABLE_STATUSES))).height,
        "high_or_critical": latest.filter(pl.col("risk_band").is_in(["High", "Critical"])).height,
        "mean_p": scored["p_vulnerable"].mean() if scored.height else None,
        "latest": latest,
        "per_round": dict(live.group_by("survey_round").agg(pl.col("household").n_unique()).iter_rows()),
    }


# ---- the same households twice -------------------------------------------------------------------------------


def test_the_same_households_in_two_rounds_count_once(
    same_set: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = _use(same_set, monkeypatch)
    first, second = same_set["reports"]
    assert first["rounds"] == {BASELINE: first["rows_accepted"]}
    assert second["rounds"] == {FOLLOW_UP: second["rows_accepted"]}
    baseline_households = first["rows_accepted"]  # the generator's ids are unique: one row per household
    assert second["rows_accepted"] == baseline_households > 100

    at = signed_in("mgr", "overview")
    assert at.multiselect(key="ov_rounds").value == [BASELINE, FOLLOW_UP]  # every round, collection order
    shown = metrics(at)
    assert shown["Households assessed"] == f"{baseline_households:,}"  # not double
    assert shown["Visits"] == f"{2 * baseline_households:,}"

    at = signed_in("mgr", "households")
    assert f"{baseline_households:,} households match" in texts(at, "caption")
    assert metrics(at)["Households"] == f"{baseline_households:,}"
    table = at.dataframe[0].value
    assert table["household_ref"].is_unique and set(table["survey_round"]) == {FOLLOW_UP}
    assert set(table["visits"]) == {2}

    content = exports.export(rt, rows.all_households(rt, cube.Filters()), "csv", actor="mgr", role="manager")
    exported = pl.read_csv(io.BytesIO(content))
    assert exported.height == baseline_households and exported["Reference"].n_unique() == baseline_households
    assert set(exported["Round"]) == {FOLLOW_UP} and set(exported["Visits"]) == {2}

    for one_round in (BASELINE, FOLLOW_UP):
        at = signed_in("mgr", "overview")
        at.multiselect(key="ov_rounds").set_value([one_round]).run()
        assert metrics(at)["Households assessed"] == f"{baseline_households:,}"
        assert metrics(at)["Visits"] == f"{baseline_households:,}"


def test_no_round_chosen_says_what_to_do(same_set: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _use(same_set, monkeypatch)
    for page, key in (("overview", "ov_rounds"), ("households", "hh_rounds")):
        at = signed_in("mgr", page)
        at.multiselect(key=key).set_value([]).run()
        assert not at.exception
        assert "pick at least one round" in texts(at, "warning") and not at.dataframe


# ---- a panel with change --------------------------------------------------------------------------------------


def test_overview_counts_equal_an_independent_computation(
    panel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = _use(panel, monkeypatch)
    visits = _visits(rt)
    both = expected(visits, [BASELINE, FOLLOW_UP])
    assert both["order"] == [BASELINE, FOLLOW_UP]
    per_round = both["per_round"]
    # some households were missed in the follow-up and some are new: the union is more than either round
    assert max(per_round.values()) < both["households"] < sum(per_round.values())
    assert both["latest"]["p_vulnerable"].is_not_null().all()  # the champion scored (and backfilled) both

    at = signed_in("mgr", "overview")
    shown = metrics(at)
    assert shown["Households assessed"] == f"{both['households']:,}"
    assert shown["Visits"] == f"{both['visits']:,}"
    assert shown["Share vulnerable"] == f"{both['vulnerable'] / both['households']:.1%}"
    assert shown["High or critical risk"] == f"{both['high_or_critical']:,}"
    assert shown["Mean P(vulnerable)"] == f"{both['mean_p']:.2f}"
    assert len(at.get("plotly_chart")) == 6
    # the per-round cube counts each household once per round
    chosen = [BASELINE, FOLLOW_UP]
    by_round = cube.per_round(cube.overview_cube(chosen), chosen)
    assert dict(by_round.select("survey_round", "households").iter_rows()) == per_round
    # a household counts in the district of its latest visit
    district = "Kanungu"
    at.multiselect(key="ov_district").set_value([district]).run()
    in_district = both["latest"].filter(pl.col("district") == district).height
    assert in_district and metrics(at)["Households assessed"] == f"{in_district:,}"

    for one_round in chosen:
        alone = expected(visits, [one_round])
        assert alone["households"] == per_round[one_round]
        at = signed_in("mgr", "overview")
        at.multiselect(key="ov_rounds").set_value([one_round]).run()
        assert metrics(at)["Households assessed"] == f"{alone['households']:,}"
        assert metrics(at)["Visits"] == f"{alone['visits']:,}"
        assert metrics(at)["High or critical risk"] == f"{alone['high_or_critical']:,}"


def test_households_and_export_list_each_household_once(
    panel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = _use(panel, monkeypatch)
    both = expected(_visits(rt), [BASELINE, FOLLOW_UP])
    at = signed_in("mgr", "households")
    assert f"{both['households']:,} households match" in texts(at, "caption")
    assert metrics(at)["Visits"] == f"{both['visits']:,}"
    table = at.dataframe[0].value
    assert len(table) == min(500, both["households"]) and table["household_ref"].is_unique
    assert table["p_vulnerable"].is_monotonic_decreasing
    latest = both["latest"].select(
        pl.format("hh-{}", pl.col("household").str.slice(0, 10)).alias("household_ref"), "survey_round"
    )
    assert dict(zip(table["household_ref"], table["survey_round"], strict=True)) == {
        r: s for r, s in latest.iter_rows() if r in set(table["household_ref"])
    }

    at.multiselect(key="hh_rounds").set_value([BASELINE]).run()
    baseline = expected(_visits(rt), [BASELINE])
    assert f"{baseline['households']:,} households match" in texts(at, "caption")
    assert set(at.dataframe[0].value["survey_round"]) == {BASELINE}

    content = exports.export(rt, rows.all_households(rt, cube.Filters()), "csv", actor="mgr", role="manager")
    exported = pl.read_csv(io.BytesIO(content))
    assert exported.height == both["households"] == exported["Reference"].n_unique()
    assert set(exported["Reference"]) == set(latest["household_ref"])
    [event] = audit.events(rt.catalog, action="exported", limit=1)
    assert event.detail["rows"] == both["households"]


def test_the_timeline_shows_every_round_of_a_household(
    panel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = _use(panel, monkeypatch)
    at = signed_in("mgr", "households")
    table = at.dataframe[0].value
    twice = table[table["visits"] == 2]["household_ref"].iloc[0]
    assert twice in at.selectbox(key="hh_timeline").options
    at.selectbox(key="hh_timeline").set_value(twice).run()
    assert not at.exception, [e.value for e in at.exception]
    timeline = at.dataframe[1].value
    assert timeline["survey_round"].tolist() == [BASELINE, FOLLOW_UP]
    assert timeline["collected_at"].is_monotonic_increasing
    assert set(timeline.columns) >= {
        "status",
        "p_vulnerable",
        "risk_band",
        "model_version",
        "village",
        "household_size",
        "agriculture_land",
        "vsla_profits_usd",
        "income_consumption_residues_per_day",
    }
    changes = at.dataframe[2].value  # first and latest answers, the largest relative change first
    assert set(changes["answer"]) == {
        "Household size",
        "Farm land (acres)",
        "Savings-group profit (USD)",
        "Income and consumption per day",
    }
    scale = changes[["first", "latest"]].abs().max(axis=1)
    relative = (changes["change"].abs() / scale.where(scale > 0)).fillna(0)
    assert relative.is_monotonic_decreasing
    events = [(e.action, e.target, (e.detail or {}).get("reference")) for e in audit.events(rt.catalog)]
    assert ("viewed", "household_timeline", twice) in events
