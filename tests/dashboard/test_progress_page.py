"""The Progress and Follow-up worklist pages (AppTest) over visits written straight into a data dir's catalog.

No Prefect and no zones: the pages read the catalog's visits only (household ids come from the validated
zone, which these tests do not write, so every id is empty here; the Households tests cover masking).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
import streamlit as st
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tasks.ingest.households import STATUS_ORDER
from tasks.platform.settings import Settings
from tasks.protection import audit
from tasks.protection.users import add_user
from tasks.runtime import Runtime, runtime_for
from tests.ingest.test_progress import VILLAGES, Row, expected_pairs, write_round

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
BASELINE, FOLLOW_UP = "2025-baseline", "2026-Q2"
# households per village at baseline, and how many of them the follow-up found again
COHORT = {VILLAGES[0]: (60, 50), VILLAGES[1]: (50, 47), VILLAGES[3]: (40, 40)}


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def rt(rtv_env: Settings) -> Runtime:
    """A fresh data dir (the environment points at it, so the app's Settings read it) with two users."""
    runtime = runtime_for(rtv_env)
    add_user(runtime.catalog, "mgr", "manager", "manager-password")
    add_user(runtime.catalog, "eng", "engineer", "engineer-password")
    return runtime


def panel(rt: Runtime, *, rounds: int = 2) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The cohort above with random statuses (seeded), written as a baseline and (rounds=2) a follow-up."""
    rng = np.random.default_rng(3)
    base: list[Row] = []
    follow: list[Row] = []
    for village, (seen, found) in COHORT.items():
        for i in range(seen):
            household = f"{village[1]}{village[2][:4]}{i:03d}".ljust(32, "0")
            before = int(rng.integers(len(STATUS_ORDER)))
            base.append((household, village, STATUS_ORDER[before], "High"))
            if i < found:  # most stay, some move one status: far cells stay small
                after = min(max(before + int(rng.choice([-1, 0, 0, 1])), 0), len(STATUS_ORDER) - 1)
                follow.append((household, village, STATUS_ORDER[after], "Medium"))
    a = write_round(rt.catalog, "ing-a", BASELINE, "2025-03-01T09:00:00Z", base).to_pandas()
    if rounds == 1:
        return a, None
    b = write_round(rt.catalog, "ing-b", FOLLOW_UP, "2026-05-02T09:00:00Z", follow, model_version="4")
    return a, b.to_pandas()


def signed_in(user: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["user"] = {"name": user, "role": {"mgr": "manager", "eng": "engineer"}[user]}
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, first_column: str) -> pd.DataFrame:
    """The one table on the page whose first column is this (headings are column names; labels are display)."""
    [found] = [d.value for d in at.dataframe if d.value.columns[0] == first_column]
    return found


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def test_progress_shows_the_transitions_of_a_crosstab(rt: Runtime) -> None:
    base, follow = panel(rt)
    assert follow is not None
    pairs = expected_pairs(base, follow)
    crosstab = pd.crosstab(pairs["progress_status_from"], pairs["progress_status_to"]).reindex(
        index=STATUS_ORDER, columns=STATUS_ORDER, fill_value=0
    )

    at = signed_in("mgr", "progress")
    shown = {m.label: m.value for m in at.metric}
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    change = pairs["progress_status_to"].map(rank) - pairs["progress_status_from"].map(rank)
    improved = int((change > 0).sum())
    assert shown["Seen in both rounds"] == f"{len(pairs):,}" == "137"
    assert shown["Improved"] == f"{improved:,} ({improved / len(pairs):.0%})"
    status = table(at, "Status before").set_index("Status before")
    for before in STATUS_ORDER:
        row_total = int(crosstab.loc[before].sum())
        for after in STATUS_ORDER:
            n = int(crosstab.loc[before, after])
            expected = f"{n:,} ({n / row_total:.0%})" if n >= 5 else "<5"
            assert status.loc[before, after] == expected, (before, after)
    assert list(status.columns) == list(STATUS_ORDER) and list(status.index) == list(STATUS_ORDER)
    cells = status.to_numpy().ravel().tolist()
    assert "<5" in cells and any(c != "<5" for c in cells)  # both kinds of cell are checked
    assert len(at.get("plotly_chart")) >= 2  # the two heat-maps
    # the follow-up was scored by another model version: the page says so
    assert "do not compare like with like" in texts(at, "warning")
    assert "model v3 (150 visits)" in texts(at, "warning") and "model v4 (137 visits)" in texts(at, "warning")
    # cohort coverage: the village found again least comes first, counts under 5 never show
    coverage = [d.value for d in at.dataframe if "found_again" in d.value.columns][0]
    assert coverage.iloc[0][["cluster", "village", "seen_first", "found_again"]].tolist() == [
        "C1",
        "Kanyabwanga",
        "60",
        "50 (83%)",
    ]
    # a district is a filter: the Rubanda village alone
    at.selectbox(key="pg_district").set_value("Rubanda").run()
    rubanda = pairs[pairs["district"] == "Rubanda"]
    assert {m.label: m.value for m in at.metric}["Seen in both rounds"] == f"{len(rubanda):,}"


def test_progress_with_one_round_says_what_is_needed(rt: Runtime) -> None:
    panel(rt, rounds=1)
    at = signed_in("mgr", "progress")
    info = texts(at, "info")
    assert "Progress needs two survey rounds" in info and f"`{BASELINE}`" in info
    assert "rtv ingest FILE --round" in info and not at.metric


def test_fell_back_export_is_audited(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    registered: dict[str, Callable[[], Any]] = {}
    original = MediaFileManager.add_deferred

    def spy(
        self: MediaFileManager,
        data: Callable[[], Any],
        mimetype: Any,
        coordinates: str,
        file_name: Any = None,
        **kw: Any,
    ) -> str:
        registered[str(file_name)] = data  # what a click on the download button runs
        return original(self, data, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    base, follow = panel(rt)
    assert follow is not None
    fell = expected_pairs(base, follow).query("fell_back")
    at = signed_in("mgr", "progress")
    listed = table(at, "household")
    assert sorted(listed["household_ref"]) == sorted(f"hh-{h[:10]}" for h in fell.index)
    assert not any(e.action == "exported" for e in audit.events(rt.catalog))

    content = registered["fell-back.csv"]()
    exported = pl.read_csv(io.BytesIO(content))
    assert sorted(exported["Reference"].to_list()) == sorted(f"hh-{h[:10]}" for h in fell.index)
    assert set(exported["Status before"]) <= {"At Risk", "On Track"}
    assert set(exported["Status after"]) <= {"Struggling", "Severely Struggling"}
    [event] = audit.events(rt.catalog, action="exported")
    assert (event.actor, event.target) == ("mgr", "fell_back")
    assert event.detail == {
        "format": "csv",
        "rows": len(fell),
        "rounds": [BASELINE, FOLLOW_UP],
        "district": None,
    }
    assert registered["fell-back.xlsx"]()[:2] == b"PK"
    assert [(e.detail or {})["format"] for e in audit.events(rt.catalog, action="exported")] == [
        "xlsx",
        "csv",
    ]


def test_worklist_lists_the_households_not_yet_seen(rt: Runtime) -> None:
    base, follow = panel(rt)
    assert follow is not None
    missing = sorted(set(base["household_pseudonym"]) - set(follow["household_pseudonym"]))
    at = signed_in("mgr", "followups")
    assert {m.label: m.value for m in at.metric}["Households due a visit"] == str(len(missing)) == "13"
    listed = table(at, "household")
    assert sorted(listed["household_ref"]) == sorted(f"hh-{h[:10]}" for h in missing)
    assert set(listed["last_round"]) == {BASELINE}
    per_village = table(at, "district")
    counts = {tuple(r[:3]): r[3] for r in per_village.itertuples(index=False)}
    # 10 due in C1/Kanyabwanga; 3 in C2/Kanyabwanga (the same name, another cluster) is under 5: suppressed
    assert counts == {VILLAGES[0]: "10", VILLAGES[1]: "<5"}
    reads = audit.events(rt.catalog, action="followups_read")
    assert [(e.actor, e.target, (e.detail or {})["count"]) for e in reads] == [("mgr", FOLLOW_UP, 13)]
    # one village: the list narrows, and that read is audited too
    at.selectbox(key="fu_village").set_value(VILLAGES[1]).run()
    assert sorted(table(at, "household")["household_ref"]) == sorted(
        f"hh-{h[:10]}" for h in missing if h.startswith("C2")
    )
    assert len(audit.events(rt.catalog, action="followups_read")) == 2


def test_worklist_with_one_round_has_nothing_due(rt: Runtime) -> None:
    panel(rt, rounds=1)
    at = signed_in("eng", "followups")
    assert "No household is due a follow-up visit yet" in texts(at, "info")


def test_pages_before_any_round(rt: Runtime) -> None:
    assert "there is none yet" in texts(signed_in("mgr", "progress"), "info")
    assert "no round has visits yet" in texts(signed_in("mgr", "followups"), "info")


def test_ids_shown_in_clear_are_audited_in_production(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    rt.keyring  # noqa: B018 - dev creates the key file production then requires
    panel(rt)
    monkeypatch.setenv("RTV_ENV", "production")
    signed_in("mgr", "progress")
    signed_in("mgr", "followups")
    decrypted = [
        (e.actor, e.target, (e.detail or {})["purpose"]) for e in audit.events(rt.catalog, action="decrypted")
    ]
    assert sorted(decrypted) == [("mgr", "fell_back", "view"), ("mgr", "followups", "view")]
