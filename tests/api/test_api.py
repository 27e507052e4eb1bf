"""The field-device API over real HTTP: uvicorn (`rtv api`) on 127.0.0.1 against a temporary Prefect server."""

from __future__ import annotations

import asyncio
import base64
import codecs
import hashlib
import io
import json
import logging
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import polars as pl
import pytest

from tasks.ingest import households
from tests.support.api import PASSWORD, USERS, base_env, in_process_server, raw_sha256, uvicorn_server
from tests.support.api import surveys as generated

pytestmark = pytest.mark.usefixtures("prefect_server")
SECRET = "test-secret-" + "x" * 60  # 64+ bytes: HS512 forgeries below get no key-length warning
MAX_UPLOAD = 64 * 1024**2
LIMITS = {
    "RTV_JWT_SECRET": SECRET,
    "RTV_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    "RTV_MAX_ROWS": "2000",
    "RTV_MAX_SYNC_SURVEYS": "20",
    "RTV_MAX_JSON_BYTES": str(256 * 1024),
    "RTV_RATE_LIMIT_PER_MINUTE": "600",
    "RTV_IP_ALLOWLIST": '["127.0.0.0/8", "::1/128"]',
    "RTV_DISPATCH_INTERVAL_SECONDS": "0.5",
    "RTV_MAX_DECOMPRESSED_BYTES": str(16 * 1024**2),
}
SEEN: list[str] = []  # every response body, checked for personal data at the end
SENT_PII: set[str] = set()  # every household, officer and device id a test generated
CODES: list[int] = []  # every status code the test clients saw (but /ready's): never a 5xx


def surveys(n: int, seed: int, *, derived: bool = True) -> list[dict[str, Any]]:
    """Synthetic surveys (api_support.surveys), their identifiers remembered for the no-PII check."""
    rows = generated(n, seed, derived=derived)
    SENT_PII.update(str(r[k]) for r in rows for k in ("HouseHoldID", "officer_id", "device_id") if r.get(k))
    return rows


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Deployments on the session's Prefect server, users, and the API server with the test limits."""
    from prefect.settings import PREFECT_API_URL

    from flows.dispatch import register_ingest_deployments
    from tasks.platform.settings import Settings
    from tasks.protection.users import add_user
    from tasks.runtime import runtime_for

    folder = tmp_path_factory.mktemp("api")
    env = base_env(folder, LIMITS) | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            if name.startswith("RTV_"):
                patch.setenv(name, value)
        register_ingest_deployments()
        rt = runtime_for(Settings())
        for name, role in USERS.items():
            add_user(rt.catalog, name, role, PASSWORD)
        log = folder / "uvicorn.log"
        with uvicorn_server(env, log) as url:
            clients: dict[str, httpx.Client] = {}
            for name in USERS:
                client = httpx.Client(base_url=url, timeout=60, event_hooks={"response": [_remember]})
                client.headers["Authorization"] = f"Bearer {_token(client, name)}"
                clients[name] = client
            anon = httpx.Client(base_url=url, timeout=60, event_hooks={"response": [_remember]})
            yield {"url": url, "rt": rt, "log": log, "clients": clients, "anon": anon}
            for client in [*clients.values(), anon]:
                client.close()


def _remember(response: httpx.Response) -> None:
    response.read()
    SEEN.append(response.text)
    if response.request.url.path != "/ready":  # 503 there means "a dependency is down", by design
        CODES.append(response.status_code)


def _token(client: httpx.Client, name: str) -> str:
    answer = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _post(client: httpx.Client, survey: dict[str, Any]) -> httpx.Response:
    return client.post("/api/v1/upload/survey-data", json=survey)


def _upload(client: httpx.Client, content: bytes, name: str = "batch.csv") -> httpx.Response:
    return client.post("/api/v1/upload/file", files={"file": (name, content, "application/octet-stream")})


def _csv(rows: list[dict[str, Any]]) -> bytes:
    return pl.DataFrame(rows).write_csv().encode()


# ---- health, docs, auth --------------------------------------------------------------------------------------


def test_health_ready_and_docs(stack: dict[str, Any]) -> None:
    anon = stack["anon"]
    assert anon.get("/health").json() == {"status": "ok"}
    ready = anon.get("/ready")
    checks = ready.json()["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {
        "catalog": True,
        "storage": True,
        "prefect_api": True,
        "champion_model": False,
    }  # no model trained yet
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert "rtv retrain" in checks["champion_model"]["message"] and "sqlite" in checks["catalog"]["message"]
    assert anon.get("/docs").status_code == 200
    paths = anon.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/upload/survey-data",
        "/api/v1/sync/batch",
        "/api/v1/upload/file",
        "/api/v1/auth/token",
        "/api/v1/status/{ingestion_id}",
        "/health",
        "/ready",
    } <= set(paths)
    schema = paths["/api/v1/upload/survey-data"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert (
        "HHIncome+Consumption+Residues/Day" in schema["properties"]
        and "VSLA_Profits.1" in schema["properties"]
    )
    assert set(schema["required"]) >= {"instance_id", "HouseHoldID", "HouseholdSize"}
    assert "HHIncome+Consumption+Residues/Day" not in schema["required"]  # derived: computed when omitted


def test_readiness_reports_a_dead_dependency(tmp_path: Path) -> None:
    from tasks.monitoring.readiness import check_prefect, check_readiness
    from tasks.platform.settings import Settings
    from tasks.runtime import Runtime

    dead = check_prefect("http://127.0.0.1:9/api")  # the discard port: nothing listens
    assert dead.ok is False and dead.message.startswith("Prefect API unreachable")
    rt = Runtime(
        Settings(data_dir=tmp_path / "data", catalog_url="postgresql+psycopg://nobody@127.0.0.1:9/none")
    )
    found = check_readiness(rt, "http://127.0.0.1:9/api")
    assert found["catalog"].ok is False and "catalog unreachable" in found["catalog"].message
    assert found["storage"].ok and not found["champion_model"].ok


def _forge(claims: dict[str, Any], key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_tokens_are_short_lived_and_checked(stack: dict[str, Any]) -> None:
    anon, url = stack["anon"], stack["url"]
    token = _token(anon, "officer1")
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="rtv-field-devices", issuer="rtv-survey-api"
    )
    assert claims["exp"] - claims["iat"] <= 1800 and claims["jti"] and claims["sub"] == "officer1"
    assert (
        anon.post(
            "/api/v1/auth/token", data={"username": "officer1", "password": "wrong-password"}
        ).status_code
        == 401
    )
    assert (
        anon.post("/api/v1/auth/token", data={"username": "nobody", "password": PASSWORD}).status_code == 401
    )
    assert anon.post("/api/v1/auth/token", data={"username": "officer1"}).status_code == 422
    now = int(time.time())
    good = {
        "sub": "officer1",
        "role": "engineer",
        "iss": "rtv-survey-api",
        "aud": "rtv-field-devices",
        "iat": now,
        "exp": now + 600,
        "jti": "x",
    }
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(good).encode()).rstrip(b"=").decode()
    head, payload, signature = token.split(".")
    bad = {
        "missing": None,
        "alg none": f"{header}.{body}.",
        "wrong aud": _forge(good | {"aud": "someone-else"}),
        "wrong iss": _forge(good | {"iss": "evil"}),
        "expired": _forge(good | {"iat": now - 4000, "exp": now - 2000}),
        "too long-lived": _forge(good | {"exp": now + 7200}),
        "no jti": _forge({k: v for k, v in good.items() if k != "jti"}),
        "wrong key": _forge(good, key="another-secret-" + "y" * 60),
        "HS512": _forge(good, alg="HS512"),
        "tampered": f"{head}.{base64.urlsafe_b64encode(json.dumps(good).encode()).rstrip(b'=').decode()}.{signature}",
        "garbage": "not-a-token",
    }
    for name, forged in bad.items():
        headers = {"Authorization": f"Bearer {forged}"} if forged else {}
        answer = httpx.get(f"{url}/api/v1/status/ing-20260101-000000-0123456789", headers=headers)
        assert answer.status_code == 401, name
        assert answer.headers["www-authenticate"] == "Bearer"
    assert (
        httpx.get(
            f"{url}/api/v1/status/ing-20260101-000000-0123456789",
            headers={"Authorization": f"Bearer {_forge(good)}"},
        ).status_code
        == 404
    )  # a good token works


# ---- single surveys, edits, roles ----------------------------------------------------------------------------


def test_survey_accept_replay_conflict_and_edit_chain(stack: dict[str, Any]) -> None:
    from tasks.ingest.landing import read_raw
    from tasks.ingest.submissions import versions_of

    officer, rt = stack["clients"]["officer1"], stack["rt"]
    first, other = surveys(2, seed=11)
    iid = first["instance_id"]
    accepted = _post(officer, first)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["outcome"] == "accepted" and body["version"] == 1
    assert body["status_url"] == f"/api/v1/status/{body['ingestion_id']}"
    ingestion = rt.catalog.get(body["ingestion_id"])
    assert (ingestion.status, ingestion.door, ingestion.submitted_by) == ("landed", "api", "officer1")
    landed = json.loads(read_raw(rt, ingestion))  # durable (and readable) before the answer
    assert landed["HouseHoldID"] == first["HouseHoldID"] and landed["instance_id"] == iid
    resent = _post(
        officer, first | {"submitted_at": "2025-12-01T10:00:00Z"}
    )  # transport metadata is not content
    assert resent.status_code == 200 and resent.json() == body | {"outcome": "replayed"}
    changed = first | {"HouseholdSize": first["HouseholdSize"] + 1}
    conflict = _post(officer, changed)
    assert conflict.status_code == 409 and "deprecated_id" in conflict.json()["detail"]
    # an edit under the same id naming itself as deprecated: version 2, version 1 kept
    edit = _post(officer, changed | {"deprecated_id": iid})
    assert edit.status_code == 202 and edit.json()["version"] == 2
    assert _post(officer, changed | {"deprecated_id": iid}).status_code == 200  # the edit itself replays
    # an ODK edit: a new instance id replacing the current head
    odk = _post(officer, changed | {"instance_id": "uuid:edit-3", "deprecated_id": iid, "HouseholdSize": 3})
    assert odk.status_code == 202 and odk.json()["version"] == 3
    stale = _post(officer, changed | {"instance_id": "uuid:edit-4", "deprecated_id": iid, "HouseholdSize": 4})
    assert stale.status_code == 409 and "replaced" in stale.json()["detail"]
    unknown = _post(officer, other | {"deprecated_id": "uuid:never-seen"})
    assert unknown.status_code == 409
    chain = versions_of(rt.catalog, iid)
    assert [v.version for v in chain] == [1, 2, 3] and len({v.ingestion_id for v in chain}) == 3
    sizes = [json.loads(read_raw(rt, rt.catalog.get(v.ingestion_id)))["HouseholdSize"] for v in chain]
    assert sizes == [first["HouseholdSize"], first["HouseholdSize"] + 1, 3]  # every version's bytes are kept


async def _post_all(
    url: str, token: str, bodies: list[dict[str, Any]], *, expect_500: bool = False
) -> list[httpx.Response]:
    """Every survey posted at once, each on its own connection, so they reach the committer together."""
    headers = {"Authorization": token}
    async with httpx.AsyncClient(
        base_url=url, timeout=60, headers=headers, limits=httpx.Limits(max_connections=len(bodies))
    ) as client:
        answers = await asyncio.gather(*(client.post("/api/v1/upload/survey-data", json=b) for b in bodies))
    for answer in answers:
        if (
            expect_500
        ):  # an injected failure: its bare 500 is the point, but its body still joins the PII check
            SEEN.append(answer.text)
        else:
            _remember(answer)
    return list(answers)


def test_concurrent_posts_of_one_instance_id_give_one_202(stack: dict[str, Any]) -> None:
    from tasks.ingest.landing import read_raw
    from tasks.ingest.submissions import versions_of

    officer, rt = stack["clients"]["officer2"], stack["rt"]
    first, second, *distinct = surveys(10, seed=31)
    iid = first["instance_id"]
    variants = [first, second | {"instance_id": iid}]  # same id, two different sets of answers
    answers = asyncio.run(
        _post_all(
            stack["url"], officer.headers["Authorization"], [variants[i % 2] for i in range(12)] + distinct
        )
    )
    mine, others = answers[:12], answers[12:]
    assert sorted(a.status_code for a in mine).count(202) == 1, [a.status_code for a in mine]
    winner = next(i for i, a in enumerate(mine) if a.status_code == 202)
    won = mine[winner].json()
    for i, answer in enumerate(mine):
        if i != winner and i % 2 == winner % 2:  # the winner's answers again: a replay of its ingestion
            assert answer.status_code == 200 and answer.json() == won | {"outcome": "replayed"}
        elif i % 2 != winner % 2:  # other answers under the same id, no deprecated_id: refused
            assert answer.status_code == 409 and "deprecated_id" in answer.json()["detail"]
    assert [(v.version, v.ingestion_id) for v in versions_of(rt.catalog, iid)] == [(1, won["ingestion_id"])]
    assert [a.status_code for a in others] == [202] * len(distinct)
    ids = [a.json()["ingestion_id"] for a in others]
    assert len(set(ids) | {won["ingestion_id"]}) == len(distinct) + 1  # every survey its own ingestion
    for answer, survey in zip(others, distinct, strict=True):
        ingestion = rt.catalog.get(answer.json()["ingestion_id"])
        assert ingestion.source == "api-survey" and ingestion.status == "landed"
        assert raw_sha256(rt, ingestion.id) == ingestion.sha256  # its own encrypted raw object, readable
        assert json.loads(read_raw(rt, ingestion))["instance_id"] == survey["instance_id"]


def test_a_failing_survey_does_not_fail_its_group(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import api.intake
    from api.app import create_app
    from tasks.ingest.submissions import versions_of
    from tasks.platform.settings import Settings
    from tasks.protection.audit import events

    rt, real_seal, real_record = stack["rt"], api.intake.seal, api.intake.record_group
    gate = threading.Event()

    def seal(keyring: Any, data: bytes) -> Any:
        if b'"uuid:gate' in data:  # hold the committer so the surveys below queue up into one group
            gate.wait(10)
        if b'"uuid:boom' in data:
            raise OSError("disk says no")
        return real_seal(keyring, data)

    monkeypatch.setattr(api.intake, "seal", seal)
    app = create_app(Settings())
    committer = app.state.api.committer
    token = stack["clients"]["officer2"].headers["Authorization"]
    rows = surveys(7, seed=32)
    good = rows[1:6]
    bodies = [rows[0] | {"instance_id": "uuid:gate-1"}, *good, rows[6] | {"instance_id": "uuid:boom-1"}]

    async def send() -> list[httpx.Response]:
        held = asyncio.ensure_future(_post_all(url, token, bodies[:1]))
        await asyncio.sleep(0.3)  # the gate survey is in the committer now
        rest = asyncio.ensure_future(_post_all(url, token, bodies[1:], expect_500=True))
        await asyncio.sleep(1.0)  # all the others are queued behind it
        gate.set()
        return (await held) + (await rest)

    with in_process_server(app) as url:
        answers = asyncio.run(send())
        assert committer.groups == 2 and committer.surveys == 7  # the gate alone, then the six together
        assert [a.status_code for a in answers] == [202] * 6 + [500]
        assert "disk" not in answers[-1].text
        for answer, survey in zip(answers[1:6], good, strict=True):
            assert (
                versions_of(rt.catalog, survey["instance_id"])[0].ingestion_id
                == answer.json()["ingestion_id"]
            )
        assert versions_of(rt.catalog, "uuid:boom-1") == []
        landed = {e.target for e in events(rt.catalog, action="landed", limit=100)}
        assert {a.json()["ingestion_id"] for a in answers[:6]} <= landed  # one audit event per survey

        # the group's transaction fails once: every survey is taken again on its own, none is lost
        calls: list[int] = []

        def record_group(*args: Any, **kwargs: Any) -> None:
            calls.append(len(kwargs["submissions"]))
            if len(calls) == 1:
                from tasks.ingest.submissions import SubmissionRace

                raise SubmissionRace("simulated")
            real_record(*args, **kwargs)

        monkeypatch.setattr(api.intake, "record_group", record_group)
        raw_before = set(rt.store.list("raw"))
        again = surveys(4, seed=33)
        answers = asyncio.run(_post_all(url, token, again))
        assert [a.status_code for a in answers] == [202] * 4 and calls
        for answer in answers:
            ingestion = rt.catalog.get(answer.json()["ingestion_id"])
            assert raw_sha256(rt, ingestion.id) == ingestion.sha256
        new_raw = set(rt.store.list("raw")) - raw_before
        assert new_raw == {rt.catalog.get(a.json()["ingestion_id"]).raw_key for a in answers}  # no orphans


def test_roles_and_own_ingestions(stack: dict[str, Any]) -> None:
    clients = stack["clients"]
    survey = surveys(1, seed=12)[0]
    refused = _post(clients["manager1"], survey)
    assert (
        refused.status_code == 403 and "manager" in refused.json()["detail"]
    )  # managers read; they do not submit
    assert stack["rt"].catalog.find_by_sha256("0" * 64) is None
    ingestion_id = _post(clients["officer1"], survey).json()["ingestion_id"]
    assert clients["officer1"].get(f"/api/v1/status/{ingestion_id}").status_code == 200
    other = clients["officer2"].get(f"/api/v1/status/{ingestion_id}")
    assert other.status_code == 403 and "state" not in other.json()
    assert clients["manager1"].get(f"/api/v1/status/{ingestion_id}").status_code == 200
    assert clients["engineer1"].get(f"/api/v1/status/{ingestion_id}").status_code == 200
    assert clients["engineer1"].get("/api/v1/status/../../etc/passwd").status_code == 404
    assert clients["engineer1"].get("/api/v1/status/ing-20260101-000000-0123456789").status_code == 404
    from tasks.protection.audit import events

    denied = events(stack["rt"].catalog, action="denied")
    assert {"officer2", "manager1"} <= {e.actor for e in denied}
    assert any(e.actor == "officer2" and e.target == ingestion_id for e in denied)


def test_derived_columns_are_computed_and_status_follows_the_flow(stack: dict[str, Any]) -> None:
    from flows.ingest import ingest

    officer = stack["clients"]["officer1"]
    survey = surveys(1, seed=13, derived=False)[0]
    assert "HHIncome+Consumption+Residues/Day" not in survey
    ingestion_id = _post(officer, survey).json()["ingestion_id"]
    assert officer.get(f"/api/v1/status/{ingestion_id}").json()["state"] == "landed"
    report = ingest(ingestion_id)  # what the worker runs
    assert "income_consumption_residues_per_day" in report["computed_columns"]
    status = officer.get(f"/api/v1/status/{ingestion_id}").json()
    assert status["state"] == report["status"] and status["state"] in (
        "completed",
        "completed_with_quarantine",
    )
    assert (status["rows_received"], status["rows_accepted"] + status["rows_quarantined"]) == (1, 1)
    assert status["finished_at"] and status["format"] == "jsonl"


def test_an_odk_edit_replaces_its_visit_in_the_round(stack: dict[str, Any]) -> None:
    """An edit (new instance id, `deprecated_id` naming the first) replaces that visit; the first stays, superseded."""
    from sqlalchemy import text

    from flows.ingest import ingest

    officer, rt = stack["clients"]["officer1"], stack["rt"]
    first = surveys(1, seed=29)[0] | {"survey_round": "2026-edit-test"}
    original = _post(officer, first).json()["ingestion_id"]
    assert ingest(original)["rows_accepted"] == 1
    edited = first | {
        "instance_id": "uuid:edit-of-29",
        "deprecated_id": first["instance_id"],
        "radios_owned": 3,
    }
    edit = _post(officer, edited)
    assert edit.status_code == 202, edit.text
    report = ingest(edit.json()["ingestion_id"])
    assert (report["rows_accepted"], report["rows_quarantined"]) == (1, 0), report["quarantine_reasons"]
    with rt.catalog.engine.connect() as connection:
        visits = connection.execute(
            text(
                "SELECT ingestion_id, state, superseded_by IS NOT NULL FROM visits "
                "WHERE survey_round = '2026-edit-test' ORDER BY id"
            )
        ).all()
    assert [tuple(v) for v in visits] == [
        (original, "final", True),  # kept in the history, superseded
        (edit.json()["ingestion_id"], "final", False),  # the edit is the counted visit
    ]
    [row] = [r for r in households.rounds(rt.catalog) if r["round"] == "2026-edit-test"]
    assert (row["households"], row["visits"]) == (1, 2)


def test_status_follows_the_prefect_flow_run(stack: dict[str, Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Failed, Running

    officer, rt = stack["clients"]["officer1"], stack["rt"]
    answer = officer.post("/api/v1/sync/batch", json={"surveys": surveys(2, seed=23)})
    ingestion = rt.catalog.get(answer.json()["ingestion_id"])
    assert ingestion.status == "landed" and ingestion.flow_run_id  # the ingest deployment was queued at once
    url = answer.json()["status_url"]
    assert officer.get(url).json()["flow_run_state"] == "Scheduled"
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(ingestion.flow_run_id, Running(), force=True)
        running = officer.get(url).json()
        assert (running["state"], running["flow_run_state"], running["reason"]) == (
            "running",
            "Running",
            None,
        )
        client.set_flow_run_state(ingestion.flow_run_id, Failed(message="boom with HH-secret"), force=True)
    failed = officer.get(url).json()
    assert failed["state"] == "failed" and failed["reason"] == "the ingest flow run is Failed"
    assert failed["predictions"] is None


# ---- batches -------------------------------------------------------------------------------------------------


def test_sync_batch_partial_acceptance_and_idempotency(stack: dict[str, Any]) -> None:
    from tasks.ingest.landing import read_raw
    from tasks.ingest.submissions import count

    officer, rt = stack["clients"]["officer1"], stack["rt"]
    earlier, *fresh = surveys(5, seed=14)
    assert _post(officer, earlier).status_code == 202
    broken = dict(fresh[2])
    del broken["HouseholdSize"]
    batch = [
        fresh[0],
        fresh[1],
        earlier,
        earlier | {"TimeToWater": 999.0},
        broken,
        fresh[0],
        fresh[3] | {"instance_id": "uuid:batch-edit", "deprecated_id": fresh[1]["instance_id"]},
        "nonsense",
    ]
    answer = officer.post("/api/v1/sync/batch", json={"surveys": batch})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [o["outcome"] for o in body["outcomes"]] == [
        "accepted",
        "accepted",
        "replayed",
        "conflict",
        "invalid",
        "replayed",
        "accepted",
        "invalid",
    ]
    assert [o["index"] for o in body["outcomes"]] == list(range(8))
    assert "HouseholdSize" in body["outcomes"][4]["reason"] and body["outcomes"][3]["reason"]
    assert [o["version"] for o in body["outcomes"][:3]] == [1, 1, 1] and body["outcomes"][6]["version"] == 2
    assert body["counts"] == {"accepted": 3, "replayed": 2, "conflict": 1, "invalid": 2}
    assert (
        body["outcomes"][2]["ingestion_id"] != body["ingestion_id"]
    )  # replayed from its own earlier ingestion
    assert body["outcomes"][5]["ingestion_id"] == body["ingestion_id"]  # a repeat within the batch
    ingestion = rt.catalog.get(body["ingestion_id"])
    assert ingestion.status == "landed" and ingestion.flow_run_id  # the ingest deployment was queued
    landed = [json.loads(line) for line in read_raw(rt, ingestion).splitlines()]
    assert [r["instance_id"] for r in landed] == [
        fresh[0]["instance_id"],
        fresh[1]["instance_id"],
        "uuid:batch-edit",
    ]
    assert count(rt.catalog, body["ingestion_id"]) == 3
    again = officer.post("/api/v1/sync/batch", json={"surveys": batch[:3]})
    assert (
        again.status_code == 200
        and again.json()["counts"]["replayed"] == 3
        and again.json()["ingestion_id"] is None
    )
    assert count(rt.catalog, body["ingestion_id"]) == 3  # nothing stored twice
    too_many = officer.post("/api/v1/sync/batch", json={"surveys": [fresh[0]] * 21})
    assert too_many.status_code == 413 and "20" in too_many.json()["detail"]
    assert officer.post("/api/v1/sync/batch", json=[fresh[0]]).status_code == 422
    assert (
        officer.post(
            "/api/v1/sync/batch",
            content=json.dumps({"surveys": [fresh[0]]}),
            headers={"content-type": "text/plain"},
        ).status_code
        == 415
    )
    all_bad = officer.post("/api/v1/sync/batch", json={"surveys": [broken, 7]})
    assert (
        all_bad.status_code == 200
        and all_bad.json()["counts"]["invalid"] == 2
        and all_bad.json()["ingestion_id"] is None
    )


# ---- files ---------------------------------------------------------------------------------------------------


def test_file_upload_replay_and_processing(stack: dict[str, Any]) -> None:
    from flows.ingest import ingest
    from tasks.protection.audit import events

    officer, rt = stack["clients"]["officer1"], stack["rt"]
    content = _csv(surveys(30, seed=15))
    first = _upload(officer, content, "clinic week 3.csv")
    assert first.status_code == 202, first.text
    info = first.json()["file_info"]
    assert info == {
        "filename": "clinic week 3.csv",
        "size_bytes": len(content),
        "format": "csv",
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    ingestion = rt.catalog.get(first.json()["ingestion_id"])
    assert raw_sha256(rt, ingestion.id) == info["sha256"] and ingestion.flow_run_id
    assert (
        ingestion.filename == "clinic week 3.csv" and "clinic" not in ingestion.raw_key
    )  # names are metadata
    [landed] = [e for e in events(rt.catalog, action="landed") if e.target == ingestion.id]
    assert (landed.actor, landed.detail) == (
        "officer1",
        {"door": "api", "bytes": len(content), "format": "csv", "round": None},
    )
    assert ingestion.survey_round is None  # none declared: the rows' dates decide in the ingest flow
    again = _upload(officer, content, "renamed.csv")
    assert again.status_code == 200 and again.json()["ingestion_id"] == first.json()["ingestion_id"]
    assert again.json()["outcome"] == "replayed" and again.json()["file_info"]["sha256"] == info["sha256"]
    assert again.json()["file_info"]["size_bytes"] == len(content)
    report = ingest(first.json()["ingestion_id"])
    status = officer.get(first.json()["status_url"]).json()
    assert status["state"] == report["status"] and status["rows_received"] == 30
    assert status["rows_accepted"] + status["rows_quarantined"] + status["rows_duplicate"] == 30


def test_survey_rounds_declared_at_every_api_door(stack: dict[str, Any]) -> None:
    from tasks.ingest.landing import read_raw
    from tasks.ingest.rounds import ROUND_PATTERN
    from tasks.protection.audit import events

    officer, rt = stack["clients"]["officer1"], stack["rt"]
    before = len(rt.catalog.list_ingestions(limit=100_000))
    # a file: `round` form field, kept on the ingestion and in the shared audit detail
    content = _csv(surveys(12, seed=41))
    files = {"file": ("round.csv", content, "text/csv")}
    refused = officer.post("/api/v1/upload/file", files=files, data={"round": "bad/label"})
    assert refused.status_code == 422 and refused.json()["detail"].startswith(
        "round: not a valid survey round"
    )
    assert "bad/label" not in refused.text  # never echoes a submitted value
    assert len(rt.catalog.list_ingestions(limit=100_000)) == before  # nothing landed
    first = officer.post("/api/v1/upload/file", files=files, data={"round": "2026-Q2"})
    assert first.status_code == 202, first.text
    ingestion = rt.catalog.get(first.json()["ingestion_id"])
    assert ingestion.survey_round == "2026-Q2" and ingestion.sha256 == hashlib.sha256(content).hexdigest()
    [landed] = [e for e in events(rt.catalog, action="landed") if e.target == ingestion.id]
    assert landed.detail == {"door": "api", "bytes": len(content), "format": "csv", "round": "2026-Q2"}
    again = officer.post("/api/v1/upload/file", files=files, data={"round": "2026-Q3"})
    assert again.status_code == 200 and again.json()["ingestion_id"] == ingestion.id  # same bytes, same file
    assert rt.catalog.get(ingestion.id).survey_round == "2026-Q2"
    # a single survey: `survey_round` is transport metadata, outside the landed bytes and the content hash
    one, other = surveys(2, seed=42)
    bad = _post(officer, one | {"survey_round": "no spaces please"})
    assert bad.status_code == 422 and [e["loc"] for e in bad.json()["detail"]] == [["survey_round"]]
    accepted = _post(officer, one | {"survey_round": "2025-baseline"})
    assert accepted.status_code == 202, accepted.text
    survey_ingestion = rt.catalog.get(accepted.json()["ingestion_id"])
    assert survey_ingestion.survey_round == "2025-baseline"
    assert b"survey_round" not in read_raw(rt, survey_ingestion) and b"2025-baseline" not in read_raw(
        rt, survey_ingestion
    )
    replay = _post(officer, one | {"survey_round": "2026-Q2"})
    assert replay.status_code == 200 and replay.json()["outcome"] == "replayed"
    assert replay.json()["ingestion_id"] == survey_ingestion.id
    # an offline batch: `round` names the batch's round; a survey declaring another one is invalid
    three = surveys(3, seed=43)
    refused_batch = officer.post("/api/v1/sync/batch", json={"surveys": three, "round": "../etc"})
    assert refused_batch.status_code == 422 and refused_batch.json()["detail"].startswith("round: ")
    batch = officer.post(
        "/api/v1/sync/batch",
        json={
            "surveys": [three[0], three[1] | {"survey_round": "2025-Q1"}, three[2] | {"survey_round": "R2"}],
            "round": "R2",
        },
    )
    assert batch.status_code == 202, batch.text
    assert [o["outcome"] for o in batch.json()["outcomes"]] == ["accepted", "invalid", "accepted"]
    assert batch.json()["outcomes"][1]["reason"].startswith("survey_round: differs from the batch's round")
    assert rt.catalog.get(batch.json()["ingestion_id"]).survey_round == "R2"
    unlabelled = officer.post("/api/v1/sync/batch", json={"surveys": [other]})
    assert (
        unlabelled.status_code == 202
        and rt.catalog.get(unlabelled.json()["ingestion_id"]).survey_round is None
    )
    # the published schema says what a round may be
    paths = stack["anon"].get("/openapi.json").json()["paths"]
    upload = paths["/api/v1/upload/file"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    sync = paths["/api/v1/sync/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    survey = paths["/api/v1/upload/survey-data"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert upload["properties"]["round"]["pattern"] == ROUND_PATTERN and upload["required"] == ["file"]
    assert sync["properties"]["round"]["pattern"] == ROUND_PATTERN
    assert {"type": "string", "pattern": ROUND_PATTERN, "maxLength": 40}.items() <= next(
        option for option in survey["properties"]["survey_round"]["anyOf"] if option.get("type") == "string"
    ).items()
    assert "survey_round" not in survey["required"]


def test_completed_status_has_a_predictions_summary(
    stack: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from flows.ingest import ingest
    from tasks.ingest.features import add_features
    from tasks.ingest.generate import generate_households
    from tasks.model.evaluation import evaluate

    officer, rt, anon = stack["clients"]["officer1"], stack["rt"], stack["anon"]
    # a real champion in the MLflow registry; few, small trees keep the test quick (quality is not the point)
    frame = add_features(generate_households(300, seed=3).frame)
    model, evaluation = evaluate(frame, params={"max_iter": 20}, folds=2)
    version = rt.registry.log(model, evaluation, {"rows": frame.height, "ingestions": []}, "test model", {})
    assert rt.registry.decide(version, evaluation, frame, 0.0).alias == "champion"

    rows = surveys(40, seed=24)
    rows[0]["HouseholdSize"] = 99  # out of range: quarantined, not scored
    uploaded = _upload(officer, _csv(rows), "week 48.csv").json()
    with caplog.at_level(logging.INFO):
        report = ingest(uploaded["ingestion_id"])
    status = officer.get(uploaded["status_url"]).json()
    assert status["state"] == report["status"] == "completed_with_quarantine"
    assert status["rows_received"] == 40 and status["rows_quarantined"] >= 1
    assert status["quarantine_reasons"]["household_size.range"] == 1
    summary = status["predictions"]
    assert summary == report["predictions"] and summary["model_version"] == version
    assert summary["rows_scored"] == status["rows_accepted"] == 40 - status["rows_quarantined"]
    assert (
        sum(summary["by_status"].values()) == sum(summary["by_risk_band"].values()) == summary["rows_scored"]
    )
    assert set(summary["by_risk_band"]) <= {"Low", "Medium", "High", "Critical"}
    assert set(summary["by_status"]) <= {"On Track", "At Risk", "Struggling", "Severely Struggling"}
    assert 0 <= summary["mean_p_vulnerable"] <= 1
    assert caplog.records and not [h for h in SENT_PII if h in caplog.text]  # the flow logs no identifiers
    deadline = time.monotonic() + 15  # /ready caches its probes for 5 s
    while (ready := anon.get("/ready")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(1)
    assert (
        ready.status_code == 200
        and ready.json()["checks"]["champion_model"]["message"] == f"champion is v{version}"
    )


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
        book.writestr("xl/worksheets/sheet1.xml", b" " * (40 * 1024**2))  # 40 MB unpacked, ~40 KB packed
    return buffer.getvalue()


def test_hostile_uploads_never_5xx_and_keep_their_bytes(stack: dict[str, Any]) -> None:
    from flows.ingest import ingest
    from tasks.ingest.zones import read_zone

    officer, rt = stack["clients"]["officer1"], stack["rt"]
    rows = surveys(5, seed=16)
    rows[1]["Village"] = '=HYPERLINK("http://x","y")'
    rows[2]["District"] = "@SUM(A1:A9)"
    rows[3]["business_number"] = "+cmd|' /C calc'!A0"
    utf16 = codecs.BOM_UTF16_LE + _csv(surveys(5, seed=17)).decode().encode("utf-16-le")
    hostile = {
        "../../../../etc/passwd.csv": _csv(surveys(3, seed=18)),
        "formulas.csv": _csv(rows),
        "bomb.xlsx": _zip_bomb(),
        "one-line.csv": b"a," * (25 * 1024**2),  # 50 MB without a line break
        "utf16.csv": utf16,
        "nested.json": b"[" * 5000 + b"]" * 5000,
    }
    landed: dict[str, str] = {}
    for name, content in hostile.items():
        answer = _upload(officer, content, name)
        assert answer.status_code == 202, (name, answer.status_code, answer.text)
        landed[name] = answer.json()["ingestion_id"]
        assert (
            raw_sha256(rt, landed[name])
            == answer.json()["file_info"]["sha256"]
            == hashlib.sha256(content).hexdigest()
        )
    assert rt.catalog.get(landed["../../../../etc/passwd.csv"]).filename == "passwd.csv"
    traversal = _upload(officer, _csv(surveys(2, seed=19)), "..\\..\\evil/../x.csv").json()
    assert traversal["file_info"]["filename"] == "x.csv"
    assert not list(Path(rt.settings.data_dir).parent.glob("**/passwd*"))
    assert not list(Path(rt.settings.data_dir).parent.glob("**/x.csv"))
    reasons = {"bomb.xlsx": "unpacks", "one-line.csv": "line", "nested.json": "deep"}
    for name, word in reasons.items():
        report = ingest(landed[name])
        assert report["status"] == "rejected", (name, report)
        status = officer.get(f"/api/v1/status/{landed[name]}").json()
        assert status["state"] == "rejected" and word in status["reason"], (name, status["reason"])
        assert (
            raw_sha256(rt, landed[name]) == rt.catalog.get(landed[name]).sha256
        )  # the bytes are still there
    assert ingest(landed["utf16.csv"])["rows_received"] == 5
    formulas = ingest(landed["formulas.csv"])
    assert formulas["rows_received"] == 5 == formulas["rows_accepted"] + formulas["rows_quarantined"]
    stored = pl.concat(
        [read_zone(rt.store, zone, landed["formulas.csv"]) for zone in ("validated", "quarantine")],
        how="diagonal_relaxed",
    )
    assert '=HYPERLINK("http://x","y")' in stored["village"].to_list()  # kept as text, never evaluated
    nested = officer.post(
        "/api/v1/upload/survey-data",
        content=b"[" * 5000 + b"]" * 5000,
        headers={"content-type": "application/json"},
    )
    assert nested.status_code == 422 and "nested" in nested.json()["detail"]
    deep_batch = officer.post(
        "/api/v1/sync/batch",
        content=b'{"surveys": ' + b"[" * 100 + b"]" * 100 + b"}",
        headers={"content-type": "application/json"},
    )
    assert deep_batch.status_code == 422
    very_deep = officer.post(
        "/api/v1/upload/survey-data", content=b"[" * 200_000, headers={"content-type": "application/json"}
    )
    assert very_deep.status_code == 422
    assert "Traceback" not in stack["log"].read_text()


# ---- limits --------------------------------------------------------------------------------------------------


def test_limits_413_415_422(stack: dict[str, Any]) -> None:
    officer, rt = stack["clients"]["officer1"], stack["rt"]
    survey = surveys(1, seed=20)[0]
    before = len(rt.catalog.list_ingestions(limit=100_000))
    big = officer.post(
        "/api/v1/upload/survey-data",
        content=b" " * (300 * 1024),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413 and "262,144-byte limit" in big.json()["detail"]
    too_many_rows = _upload(officer, _csv(surveys(1, seed=21) * 2100))
    assert too_many_rows.status_code == 413 and "2,000-row limit" in too_many_rows.json()["detail"]
    too_big = _upload(officer, b"x," * (MAX_UPLOAD // 2 + 1024))
    assert too_big.status_code == 413 and "limit" in too_big.json()["detail"]
    assert (
        officer.post(
            "/api/v1/upload/survey-data", content=json.dumps(survey), headers={"content-type": "text/plain"}
        ).status_code
        == 415
    )
    assert _upload(officer, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 50, "photo.csv").status_code == 415
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert _upload(officer, plain_zip.getvalue(), "notes.xlsx").status_code == 415
    assert (
        officer.post(
            "/api/v1/upload/file", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"}
        ).status_code
        == 415
    )
    assert _upload(officer, b"", "empty.csv").status_code == 422
    assert officer.post("/api/v1/upload/file", files={"other": ("a.csv", b"a,b\n1,2\n")}).status_code == 422
    wrong = survey | {"HouseholdSize": "seven", "HouseHoldID": 12345, "Unexpected": 1}
    invalid = _post(officer, wrong)
    assert invalid.status_code == 422
    fields = {tuple(e["loc"]) for e in invalid.json()["detail"]}
    assert {("HouseholdSize",), ("HouseHoldID",), ("Unexpected",)} <= fields
    assert "seven" not in invalid.text and "12345" not in invalid.text
    missing = {k: v for k, v in survey.items() if k != "instance_id"}
    assert _post(officer, missing).status_code == 422
    assert _post(officer, survey | {"instance_id": "not an id with spaces / slashes"}).status_code == 422
    assert (
        officer.post(
            "/api/v1/upload/survey-data", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert officer.post("/api/v1/upload/survey-data", json=[survey]).status_code == 422
    assert len(rt.catalog.list_ingestions(limit=100_000)) == before  # nothing refused was landed


def test_rate_limit_429_with_retry_after(stack: dict[str, Any]) -> None:
    burst = stack["clients"]["burst"]
    codes = [burst.get("/api/v1/status/ing-20260101-000000-0123456789") for _ in range(130)]
    assert {r.status_code for r in codes} == {404, 429}
    limited = [r for r in codes if r.status_code == 429]
    assert 10 <= len(limited) <= 40  # a burst of 100 is allowed (600/minute / 6), then 10 a second
    wait = int(limited[-1].headers["retry-after"])
    assert 1 <= wait <= 2
    assert (
        stack["clients"]["officer2"].get("/api/v1/status/ing-20260101-000000-0123456789").status_code == 404
    )
    time.sleep(wait)
    assert (
        burst.get("/api/v1/status/ing-20260101-000000-0123456789").status_code == 404
    )  # Retry-After was honest


def test_cors_off_and_ip_allow_list(stack: dict[str, Any]) -> None:
    url = stack["url"]
    answer = httpx.get(f"{url}/health", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    preflight = httpx.options(
        f"{url}/api/v1/upload/survey-data",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers
    outside = httpx.get(
        f"{url}/health", headers={"X-Forwarded-For": "203.0.113.7"}
    )  # uvicorn trusts 127.0.0.1
    assert outside.status_code == 403
    inside = httpx.get(f"{url}/health", headers={"X-Forwarded-For": "127.0.0.9"})
    assert inside.status_code == 200


# ---- no personal data out ------------------------------------------------------------------------------------


def test_unexpected_errors_are_a_bare_500_and_log_no_values(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi import FastAPI

    from api.errors import ContainErrors

    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("household HH-0042-SECRET is odd")

    app.add_middleware(ContainErrors)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return await client.get("/boom")

    with caplog.at_level(logging.ERROR, logger="rtv.api"):
        answer = asyncio.run(call())
    assert answer.status_code == 500 and "HH-0042" not in answer.text
    assert "ValueError" in caplog.text and "/boom" in caplog.text and "test_api.py" in caplog.text
    assert "HH-0042" not in caplog.text


def test_no_personal_data_in_any_response_or_log(stack: dict[str, Any]) -> None:
    officer = stack["clients"]["officer1"]
    rows = surveys(4, seed=25)
    _post(officer, rows[0])
    _post(officer, rows[0] | {"HouseholdSize": 2})  # 409
    _post(officer, rows[1] | {"HouseholdSize": "many"})  # 422
    officer.post(
        "/api/v1/sync/batch", json={"surveys": [rows[2], rows[2] | {"TimeToWater": "x"}, {"a": rows[3]}]}
    )
    log = stack["log"].read_text()
    assert (
        "POST /api/v1/upload/survey-data" in log and "POST /api/v1/sync/batch" in log
    )  # the real server log
    text = "\n".join(SEEN) + log
    assert rows[0]["HouseHoldID"] in SENT_PII and not [value for value in SENT_PII if value in text]
    assert CODES and max(CODES) < 500 and " 500 " not in log
