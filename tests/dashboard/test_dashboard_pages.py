"""The Streamlit dashboard page by page (AppTest): empty states, figures from real ingests, roles, decisions, exports.

Data is prepared through the real code paths (land + the ingest flow in-process, a forced retrain) once per
module; each test points the environment at it before AppTest runs the script, so `Settings()` inside the app
reads the same data directory.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from threadpoolctl import threadpool_limits

from dashboard import cube, data, exports, prefect_view, rows, zones
from flows.ingest import ingest
from flows.retrain import retrain
from tasks.ingest import households
from tasks.ingest.contract import VULNERABLE_STATUSES
from tasks.ingest.generate import generate_households, write_households
from tasks.ingest.landing import land
from tasks.ingest.zones import read_zone
from tasks.model.evaluation import evaluate
from tasks.platform.settings import Settings
from tasks.protection import audit
from tasks.protection.users import add_user
from tasks.runtime import runtime_for
from tasks.workflows.review import held_rows

pytestmark = pytest.mark.usefixtures("prefect_server")

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = ("overview", "pipeline_runs", "data_quality", "review_queue", "model", "households", "upload")
PASSWORDS = {"eng": "engineer-password", "mgr": "manager-password", "officer": "officer-password"}
ROLES = {"eng": "engineer", "mgr": "manager", "officer": "field_officer"}
MASKED = (
    r"^(KAN|MIT|RUK|RUB)-[•-]+$"  # tasks.protection.protect.mask_id: the district prefix, then only the shape
)


def _point_env(mp: pytest.MonkeyPatch, data_dir: Path, key_file: Path) -> None:
    for name in list(os.environ):
        if name.startswith("RTV_") and name != "RTV_REAL_DATA":
            mp.delenv(name)
    mp.setenv("RTV_DATA_DIR", str(data_dir))
    mp.setenv("RTV_KEY_FILE", str(key_file))


def _add_users(rt: Any) -> None:
    for name, password in PASSWORDS.items():
        add_user(rt.catalog, name, ROLES[name], password)


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    """Small HistGradientBoosting fits and predictions (training, scoring, approvals) on one OpenMP thread.

    With a thread per core they spin-wait for busy cores: on a shared 2-core machine the module's model work
    took 3-4x longer (permutation importance: ~5 ms per tree per call).
    """
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[dict[str, Any]]:
    """A data dir with a clean ingest (before any model), a champion, and a messy ingest scored and held."""
    base = tmp_path_factory.mktemp("dashboard")
    with pytest.MonkeyPatch.context() as mp:
        _point_env(mp, base / "data", base / "keys.json")
        # a quick model: these tests need a champion with an evaluation, not a good one (full training: ~30 s)
        mp.setattr("flows.retrain.evaluate", lambda frame: evaluate(frame, params={"max_iter": 15}, folds=3))
        rt = runtime_for(Settings())
        write_households(generate_households(500, seed=71).frame, base / "clean.csv")
        clean = ingest(land(rt, base / "clean.csv", source_name="clean", door="cli").ingestion_id)
        model = retrain(force=True)
        write_households(generate_households(300, seed=72, bad_rate=0.2).frame, base / "messy.csv")
        messy = ingest(land(rt, base / "messy.csv", source_name="messy", door="upload").ingestion_id)
        _add_users(rt)
        yield {
            "data_dir": base / "data",
            "key_file": base / "keys.json",
            "clean": clean,
            "messy": messy,
            "version": model["version"],
        }


@pytest.fixture
def with_data(populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The environment pointed at the populated data dir for this test."""
    _point_env(monkeypatch, populated["data_dir"], populated["key_file"])
    return populated


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with users and nothing else, shared by the empty-state tests (they only read)."""
    base = tmp_path_factory.mktemp("empty")
    with pytest.MonkeyPatch.context() as mp:
        _point_env(mp, base / "data", base / "keys.json")
        _add_users(runtime_for(Settings()))
    return base


@pytest.fixture
def empty(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The environment pointed at the empty data dir for this test."""
    _point_env(monkeypatch, empty_dir / "data", empty_dir / "keys.json")
    return Settings()


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def signed_in(user: str, page: str | None = None) -> AppTest:
    """An app with `user` signed in, on `page` (the Overview by default)."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["user"] = {"name": user, "role": ROLES[user]}
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def button(at: AppTest, label: str) -> Any:
    [found] = [b for b in at.button if b.label == label]
    return found


# ---- signing in ----------------------------------------------------------------------------------------------


def test_login_success_and_failure(empty: Settings) -> None:
    rt = runtime_for(empty)
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert at.text_input(key="login_name") and not at.metric
    at.text_input(key="login_name").input("mgr")
    at.text_input(key="login_password").input("not the password")
    button(at, "Sign in").click().run()
    assert "Wrong user name or password" in texts(at, "error")
    assert "user" not in at.session_state
    at.text_input(key="login_password").input(PASSWORDS["mgr"])
    button(at, "Sign in").click().run()
    assert not at.exception
    assert at.session_state["user"] == {"name": "mgr", "role": "manager"}
    assert "No households yet" in texts(at, "info")  # the Overview, empty
    actions = [(e.actor, e.action) for e in audit.events(rt.catalog)]
    assert ("mgr", "signed_in") in actions and ("mgr", "denied") in actions


def test_field_officer_sees_no_pages(empty: Settings) -> None:
    at = signed_in("officer")
    assert "has no dashboard pages" in texts(at, "info") and not at.metric


# ---- every page without data -------------------------------------------------------------------------------

EMPTY_STATES = {
    "overview": ("info", "No households yet"),
    "pipeline_runs": ("info", "No file has been landed yet"),
    "data_quality": ("info", "No ingestion has finished yet"),
    "review_queue": ("info", "Nothing is waiting for review"),
    "model": ("info", "No model registered yet"),
    "households": ("info", "No households yet"),
    "upload": ("info", "Drop a file above"),
}


@pytest.mark.parametrize("page", PAGES)
def test_page_without_data(page: str, empty: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # no Prefect either: the pages must say so instead of failing
    monkeypatch.setattr(
        prefect_view,
        "prefect_api",
        lambda: prefect_view.PrefectApi("http://127.0.0.1:9/api", False, "http://127.0.0.1:9"),
    )
    at = signed_in("eng", page)
    kind, text = EMPTY_STATES[page]
    assert text in texts(at, kind), (page, texts(at, kind))
    if page == "pipeline_runs":
        assert "is not answering" in texts(at, "warning")
    if page == "model":
        assert "Retrain now" in buttons(at)


# ---- every page with data ----------------------------------------------------------------------------------


def test_overview_with_data(with_data: dict[str, Any]) -> None:
    rt = runtime_for(Settings())
    processed = read_zone(rt.store, "processed")
    predictions = read_zone(rt.store, "predictions")
    # households, not rows: each once, at its latest visit (the registry's own query, not the dashboard's)
    latest = households.latest_visits(rt.catalog).with_columns(
        pl.coalesce("observed_status", "predicted_status").alias("status")
    )
    at = signed_in("mgr", "overview")
    shown = metrics(at)
    vulnerable = latest.filter(pl.col("status").is_in(list(VULNERABLE_STATUSES))).height
    assert shown["Households assessed"] == f"{latest.height:,}"
    assert shown["Visits"] == f"{latest.height:,}"  # one round: one visit per household
    assert latest.height == processed.height  # the generator's household ids are unique, every row a visit
    assert shown["Share vulnerable"] == f"{vulnerable / latest.height:.1%}"
    assert (
        shown["High or critical risk"]
        == f"{latest.filter(pl.col('risk_band').is_in(['High', 'Critical'])).height:,}"
    )
    assert shown["Mean P(vulnerable)"] == f"{latest['p_vulnerable'].mean():.2f}"
    # the first champion scored the households imported before it (retrain backfills), so none lacks a band
    assert predictions.height == processed.height and latest["risk_band"].is_not_null().all()
    assert "no risk band yet" not in texts(at, "caption")
    assert len(at.get("plotly_chart")) == 6
    assert at.multiselect(key="ov_rounds").value == [r["round"] for r in households.rounds(rt.catalog)]
    # filters narrow every figure
    district = "Kanungu"
    at.multiselect(key="ov_district").set_value([district]).run()
    in_district = latest.filter(pl.col("district") == district)
    assert metrics(at)["Households assessed"] == f"{in_district.height:,}"
    at.multiselect(key="ov_source").set_value(["messy"]).run()
    messy = in_district.filter(pl.col("ingestion_id") == with_data["messy"]["ingestion_id"])
    assert metrics(at)["Households assessed"] == f"{messy.height:,}"


def test_pipeline_runs_with_data(with_data: dict[str, Any]) -> None:
    at = signed_in("eng", "pipeline_runs")
    assert not texts(at, "warning"), texts(at, "warning")
    assert int(metrics(at)["Recent runs"].replace(",", "")) >= 2
    [runs] = [d.value for d in at.dataframe if "Rows" in d.value.columns or "rows" in d.value.columns][:1]
    ingest_runs = runs[runs["flow"] == "ingest"]
    clean = with_data["clean"]
    row = ingest_runs[ingest_runs["ingestion_id"] == clean["ingestion_id"]]
    assert len(row) >= 1 and int(row["rows"].iloc[0]) == clean["rows_received"]
    assert set(row["state"]) == {"Completed"}
    assert row["link"].iloc[0].startswith("http://127.0.0.1:4200/runs/flow-run/")
    assert "Open the Prefect UI" in [b.proto.label for b in at.get("link_button")]
    # the health panel comes first: the same score tasks.monitoring.health computes, its band, one metric per component
    from tasks.monitoring.health import WEIGHTS, health_report

    report = health_report(runtime_for(Settings()))
    assert shown_health(at) == (f"{report.score:.0f} / 100", report.band)
    assert {name.capitalize() for name in WEIGHTS} <= set(metrics(at))
    assert report.band.capitalize() in texts(at, "markdown")


def shown_health(at: AppTest) -> tuple[str, str]:
    [score] = [m for m in at.metric if m.label == "Health score"]
    return score.value, score.proto.delta


def test_health_panel_without_data_says_why(empty: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    at = signed_in("mgr", "pipeline_runs")
    value, band = shown_health(at)
    assert band in ("degraded", "unhealthy") and value.endswith("/ 100")
    assert "champion" in texts(at, "markdown").lower()  # no model yet is named as a reason


def test_data_quality_with_data(with_data: dict[str, Any]) -> None:
    clean, messy = with_data["clean"], with_data["messy"]
    at = signed_in("mgr", "data_quality")
    shown = metrics(at)
    assert shown["Rows received"] == f"{clean['rows_received'] + messy['rows_received']:,}"
    assert shown["Quarantined"] == f"{messy['rows_quarantined']:,}"
    accepted = clean["rows_accepted"] + messy["rows_accepted"]
    assert shown["Pass rate"] == f"{accepted / (accepted + messy['rows_quarantined']):.1%}"
    # the messy ingest ran after the champion existed, so the ingest flow stored its drift
    from tasks.monitoring.drift import latest_drift

    [check] = latest_drift(runtime_for(Settings()).catalog)
    assert check["ingestion_id"] == messy["ingestion_id"]
    flagged = [name for name, stats in check["features"].items() if stats.get("flag")]
    assert shown["Drift score"] == f"{check['score']:.3f}"
    assert shown["Features flagged"] == f"{len(flagged)} of {len(check['features'])}"
    assert len(at.get("plotly_chart")) == 4  # trend, rules, fixes, PSI per feature
    at.toggle(key="dq_docs").set_value(True).run()
    assert not at.exception
    assert at.selectbox(key="dq_docs_page").value.startswith("validations/")
    assert any(d.proto.label.startswith("Download the whole Data Docs") for d in at.get("download_button"))


def test_data_quality_survives_a_broken_drift_store(
    with_data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(rt: Any) -> list[dict[str, Any]]:
        raise RuntimeError("no such table: drift_results")

    monkeypatch.setattr(data, "_drift_rows", broken)
    at = signed_in("mgr", "data_quality")
    assert "No drift scores yet" in texts(at, "info")
    assert "Rows received" in metrics(at)


def test_review_queue_with_data(with_data: dict[str, Any]) -> None:
    rt = runtime_for(Settings())
    waiting = held_rows(rt)
    decrypted_before = len(audit.events(rt.catalog, action="decrypted"))
    at = signed_in("mgr", "review_queue")
    assert metrics(at)["Rows waiting"] == f"{waiting.height:,}"
    table = at.dataframe[0].value
    # masked: no PII outside production (held ids may be malformed, so check that nothing past the prefix shows)
    assert table["household"].dropna().map(lambda v: not re.search(r"[A-Za-z0-9]", v[3:])).all()
    assert table["household_ref"].str.startswith("hh-").all()
    assert len(audit.events(rt.catalog, action="decrypted")) == decrypted_before
    assert table["reasons"].str.len().min() > 0
    assert ("mgr", "viewed") in [(e.actor, e.action) for e in audit.events(rt.catalog)]


def test_model_with_data(with_data: dict[str, Any]) -> None:
    at = signed_in("eng", "model")
    assert metrics(at)["Champion"] == f"v{with_data['version']}"
    assert len(at.get("plotly_chart")) == 2  # per district, feature importance
    assert "Retrain now" in buttons(at)


def test_households_with_data(with_data: dict[str, Any]) -> None:
    rt = runtime_for(Settings())
    latest = households.latest_visits(rt.catalog)
    at = signed_in("mgr", "households")
    assert f"{latest.height:,} households match" in texts(at, "caption")
    table = at.dataframe[0].value
    assert len(table) == min(500, latest.height) and table["household_ref"].is_unique
    assert (
        table["household"].str.fullmatch(MASKED).all() and table["household_ref"].str.startswith("hh-").all()
    )
    scored = table["p_vulnerable"].dropna()
    assert scored.is_monotonic_decreasing
    assert {"Export CSV", "Export Excel"} <= {d.proto.label for d in at.get("download_button")}
    band = [b for b in at.multiselect(key="hh_band").options if b != zones.NOT_SCORED][-1]
    at.multiselect(key="hh_band").set_value([band]).run()
    assert set(at.dataframe[0].value["risk_band"]) == {band}


@pytest.fixture
def ingest_deployment(with_data: dict[str, Any]) -> Iterator[None]:
    """An `ingest/ingest` deployment on the test server (no worker serves it: runs stay queued)."""
    from prefect.client.orchestration import get_client

    deployment_id = ingest.to_deployment(name="ingest").apply()
    yield
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment_id)


def test_upload_with_data(with_data: dict[str, Any], ingest_deployment: None, tmp_path: Path) -> None:
    rt = runtime_for(Settings())
    path = write_households(generate_households(80, seed=73, bad_rate=0.1).frame, tmp_path / "batch.csv")
    at = signed_in("mgr", "upload")
    assert "up to 200 MB" in texts(at, "markdown")
    at.file_uploader(key="upload_file").set_value(("../odd/Kanungu Q3.csv", path.read_bytes(), "text/csv"))
    at.text_input(key="upload_round").input("2025-baseline")
    at.run()
    button(at, "Import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ingestion_id = at.session_state["upload_tracking"]["id"]
    landed = rt.catalog.get(ingestion_id)
    assert landed.door == "upload" and landed.submitted_by == "mgr" and landed.source == "Kanungu Q3.csv"
    assert landed.survey_round == "2025-baseline"
    assert landed.flow_run_id and at.session_state["upload_tracking"]["queued"]
    assert "Queued for a worker" in at.get("progress")[0].proto.text
    # a worker would run it; run the same flow here, then the page shows the report
    report = ingest(ingestion_id)
    at.run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Rows received"] == f"{report['rows_received']:,}"
    assert shown["Quarantined for review"] == f"{report['rows_quarantined']:,}"
    assert f"Import report `{ingestion_id}`" in texts(at, "markdown")
    assert report["rounds"] == {"2025-baseline": report["rows_accepted"]}
    assert f"| 2025-baseline | {report['rows_accepted']:,} | {report['rows_quarantined']:,} |" in texts(
        at, "markdown"
    )
    [event] = [e for e in audit.events(rt.catalog, action="landed") if e.target == ingestion_id]
    assert (event.actor, event.detail) == (
        "mgr",
        {"door": "upload", "bytes": landed.size_bytes, "format": None, "round": "2025-baseline"},
    )
    # the same bytes again: the earlier import's report, nothing stored twice
    at.file_uploader(key="upload_file").set_value(("again.csv", path.read_bytes(), "text/csv"))
    at.run()
    button(at, "Import").click().run()
    assert f"already imported as `{ingestion_id}`" in texts(at, "info")
    assert len([i for i in rt.catalog.list_ingestions() if i.sha256 == landed.sha256]) == 1


def test_upload_refuses_a_bad_survey_round_and_lands_nothing(rtv_env: Settings, tmp_path: Path) -> None:
    rt = runtime_for(rtv_env)
    _add_users(rt)  # a data dir of its own: nothing may land in it
    path = write_households(generate_households(20, seed=75).frame, tmp_path / "round.csv")
    at = signed_in("mgr", "upload")
    assert at.text_input(key="upload_round").label == "Survey round (optional)"
    at.file_uploader(key="upload_file").set_value(("round.csv", path.read_bytes(), "text/csv"))
    at.text_input(key="upload_round").input("bad/label")
    at.run()
    button(at, "Import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [status] = at.get("status")
    assert status.label.startswith("Refused: not a valid survey round: use 1 to 40 letters")
    assert status.icon == ":material/error:"
    assert "upload_tracking" not in at.session_state
    assert rt.catalog.list_ingestions() == [] and rt.store.list("raw") == []


def test_upload_without_prefect_lands_and_says_so(
    rtv_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _add_users(runtime_for(rtv_env))  # a data dir of its own: the shared empty one must stay empty
    monkeypatch.setattr(
        prefect_view,
        "prefect_api",
        lambda: prefect_view.PrefectApi("http://127.0.0.1:9/api", False, "http://127.0.0.1:9"),
    )
    path = write_households(generate_households(20, seed=74).frame, tmp_path / "offline.csv")
    at = signed_in("mgr", "upload")
    at.file_uploader(key="upload_file").set_value(("offline.csv", path.read_bytes(), "text/csv")).run()
    button(at, "Import").click().run()
    track = at.session_state["upload_tracking"]
    assert not track["queued"] and "is not answering" in track["why"]
    landed = runtime_for(rtv_env).catalog.get(track["id"])
    assert landed.status == "landed" and landed.flow_run_id is None
    assert "landed safely" in texts(at, "warning") and "next sweep" in texts(at, "warning")


# ---- roles -------------------------------------------------------------------------------------------------


def test_manager_sees_no_engineer_controls(with_data: dict[str, Any]) -> None:
    for page in PAGES:
        at = signed_in("mgr", page)
        assert "Retrain now" not in buttons(at), page
        assert "Retrain now" not in texts(at, "markdown"), page
    assert "Retrain now" in buttons(signed_in("eng", "model"))


def test_household_ids_are_decrypted_only_in_production(
    with_data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTV_ENV", "production")  # the key file exists, so production may use it
    rt = runtime_for(Settings())
    at = signed_in("mgr", "households")
    ids = at.dataframe[0].value["household"]
    assert ids.map(lambda v: bool(re.match(r"^(KAN|MIT|RUK|RUB)-[A-Z0-9-]*\d[A-Z0-9-]*$", str(v)))).all(), (
        ids.head()
    )
    events = [
        (e.actor, e.action, e.target, (e.detail or {}).get("purpose")) for e in audit.events(rt.catalog)
    ]
    assert ("mgr", "decrypted", "households", "view") in events
    assert ("mgr", "viewed", "households", None) in events
    # the review queue opens held rows' ids from the quarantine zone itself
    at = signed_in("mgr", "review_queue")
    ingestion_id = at.selectbox(key="rq_ingestion").value
    held = at.dataframe[0].value["household"].dropna()
    assert len(held) and not held.str.contains("•").any()
    events = [
        (e.actor, e.action, e.target, (e.detail or {}).get("purpose")) for e in audit.events(rt.catalog)
    ]
    assert ("mgr", "decrypted", ingestion_id, "review") in events
    # an export shows the ids too, and says so in the audit log
    content = exports.export(rt, rows.all_households(rt, cube.Filters()), "csv", actor="mgr", role="manager")
    assert re.search(rb"\n(KAN|MIT|RUK|RUB)-[A-Z0-9-]*\d[A-Z0-9-]*,hh-", content)
    [decrypted] = audit.events(rt.catalog, action="decrypted", limit=1)
    assert (decrypted.actor, decrypted.detail["purpose"]) == ("mgr", "export")


# ---- decisions ---------------------------------------------------------------------------------------------


def test_approve_and_reject_from_the_review_page(with_data: dict[str, Any]) -> None:
    rt = runtime_for(Settings())
    at = signed_in("mgr", "review_queue")
    ingestion_id = at.selectbox(key="rq_ingestion").value
    before = held_rows(rt, ingestion_id)
    first, second, third = before["source_row"].head(3).to_list()
    processed_before = read_zone(rt.store, "processed", ingestion_id).height

    at.multiselect(key="rq_rows_0").set_value([first, second]).run()
    at.text_input(key="rq_note_0").input("checked by phone").run()
    button(at, "Approve").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "2 row(s) of" in texts(at, "success") and "approved" in texts(at, "success")
    decided = {(r.source_row, r.decision, r.reviewer, r.note) for r in rt.catalog.reviews(ingestion_id)}
    assert {
        (first, "approved", "mgr", "checked by phone"),
        (second, "approved", "mgr", "checked by phone"),
    } <= decided
    assert read_zone(rt.store, "processed", ingestion_id).height == processed_before + 2
    scored = read_zone(rt.store, "predictions", ingestion_id)
    assert (
        scored.filter(pl.col("source_row").is_in([first, second]))["model_version"].to_list()
        == [with_data["version"]] * 2
    )
    assert metrics(at)["Rows waiting"] == f"{held_rows(rt).height:,}"
    assert first not in at.multiselect(key="rq_rows_1").options  # the approved rows left the queue

    at.multiselect(key="rq_rows_1").set_value([third]).run()
    button(at, "Reject").click().run()
    assert "rejected" in texts(at, "success")
    assert (third, "rejected", "mgr") in {
        (r.source_row, r.decision, r.reviewer) for r in rt.catalog.reviews(ingestion_id)
    }
    assert third not in held_rows(rt, ingestion_id)["source_row"].to_list()
    actions = [(e.actor, e.action, e.target) for e in audit.events(rt.catalog)]
    assert ("mgr", "approved", ingestion_id) in actions and ("mgr", "rejected", ingestion_id) in actions


# ---- exports -----------------------------------------------------------------------------------------------


def test_neutralise_formula_cells() -> None:
    frame = pl.DataFrame(
        {
            "village": [
                '=HYPERLINK("http://x","y")',
                "+cmd",
                "-1+2",
                "@SUM(A1)",
                "\tTab",
                "Kyanda",
                None,
                "a=b",
            ],
            "p": [-0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    safe = exports.neutralise(frame)
    assert safe["village"].to_list() == [
        '\'=HYPERLINK("http://x","y")',
        "'+cmd",
        "'-1+2",
        "'@SUM(A1)",
        "'\tTab",
        "Kyanda",
        None,
        "a=b",
    ]
    assert safe["p"].to_list() == frame["p"].to_list()  # numbers stay numbers, negative ones too
    assert b"'=HYPERLINK" in exports.to_csv(frame)
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(exports.to_excel(frame))).active
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert cells[0].value == '\'=HYPERLINK("http://x","y")' and cells[0].data_type == "s"
    assert all(c.data_type != "f" for c in cells)


def test_export_is_masked_neutralised_and_audited(with_data: dict[str, Any]) -> None:
    rt = runtime_for(Settings())
    households = rows.all_households(rt, cube.Filters(districts=("Kanungu",)))
    households = households.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("=1+1"))
        .otherwise(pl.col("village"))
        .alias("village")
    )
    content = exports.export(
        rt, households, "csv", actor="mgr", role="manager", filters={"districts": ["Kanungu"]}
    )
    frame = pl.read_csv(io.BytesIO(content))
    assert frame.height == households.height and frame["District"].unique().to_list() == ["Kanungu"]
    assert (
        frame["Household ID"].str.contains(MASKED).all() and frame["Reference"].str.starts_with("hh-").all()
    )
    assert frame["Village"][0] == "'=1+1"
    [event] = [e for e in audit.events(rt.catalog, action="exported")][:1]
    assert (
        event.actor == "mgr" and event.detail["rows"] == households.height and event.detail["format"] == "csv"
    )
    workbook = exports.export(rt, households, "xlsx", actor="mgr", role="manager")
    assert workbook[:2] == b"PK"


def test_overview_cube_matches_the_rows() -> None:
    rows = pl.DataFrame(
        {
            "survey_round": ["r1", "r2", "r2", "r1"],
            "district": ["A", "A", "B", "A"],
            "cluster": ["a", "a", "b", "a"],
            "village": ["x", "y", "z", "x"],
            "source": ["s", "s", "t", "s"],
            "status": ["Struggling", "On Track", "At Risk", "On Track"],
            "risk_band": ["High", "Low", zones.NOT_SCORED, "Low"],
            "visits": [3, 5, 2, 4],
            "round_households": [3, 5, 2, 4],
            "round_vulnerable": [3, 0, 0, 0],
            # the 4 households of the last row were seen again in r2 (their latest visit): counted there
            "households": [3, 5, 2, 0],
            "household_visits": [3, 9, 2, 0],  # 4 of the 5 households of the second row: two visits each
            "vulnerable": [3, 0, 0, 0],
            "scored": [3, 5, 0, 0],
            "p_sum": [2.4, 1.0, 0.0, 0.0],
        }
    )
    top = cube.headline(rows)
    assert top == {
        "households": 10,
        "visits": 14,
        "share_vulnerable": 0.3,
        "high_or_critical": 3,
        "mean_p": 3.4 / 8,
        "not_scored": 2,
    }
    only_a = cube.filter_cube(rows, cube.Filters(districts=("A",), sources=("s",)))
    assert cube.headline(only_a)["households"] == 8
    by_district = cube.breakdown(rows, "district")
    assert dict(by_district.select("district", "share_vulnerable").iter_rows()) == {"A": 3 / 8, "B": 0.0}
    by_round = cube.per_round(rows, ["r1", "r2"])
    assert by_round.select("survey_round", "households", "visits", "share_vulnerable").rows() == [
        ("r1", 7, 7, 3 / 7),
        ("r2", 7, 7, 0.0),
    ]
    assert cube.per_round(rows, ["r2", "r1"])["survey_round"].to_list() == ["r2", "r1"]
