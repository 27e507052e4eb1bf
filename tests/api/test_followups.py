"""GET /api/v1/followups on two rounds ingested by the real flow: role scoping, the PII rule, audit, bad input."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi import FastAPI

from api.app import create_app
from flows.ingest import ingest
from tasks.ingest.generate import generate_panel, write_households
from tasks.ingest.landing import land
from tasks.platform.settings import Settings
from tasks.protection.assignments import Village, assign
from tasks.protection.audit import events
from tasks.protection.protect import mask_id, normalise_id, pseudonym
from tasks.protection.users import add_user
from tasks.runtime import runtime_for

SECRET = "followups-secret-" + "x" * 48
PASSWORD = "correct-horse-battery"
USERS = {
    "officer_a": "field_officer",
    "officer_b": "field_officer",
    "officer_c": "field_officer",  # assigned nothing
    "manager1": "manager",
    "engineer1": "engineer",
}
PATH = "/api/v1/followups"


def _due(first: pl.DataFrame, second: pl.DataFrame) -> pl.DataFrame:
    """Independently of the registry: round-1 households not surveyed in round 2, where round 1 found them."""
    ids = pl.col("household_id").map_elements(normalise_id, return_dtype=pl.String)
    seen_again = second.select(ids)["household_id"]
    return (
        first.select(ids, "district", "cluster", "village")
        .filter(~pl.col("household_id").is_in(seen_again.implode()))
        .sort("district", "cluster", "village", "household_id")
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[dict[str, Any]]:
    """Two rounds ingested, officers A and B assigned one village each, a dev and a production app."""
    folder = tmp_path_factory.mktemp("followups")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("RTV_") and name != "RTV_REAL_DATA":
                patch.delenv(name)
        patch.setenv("RTV_DATA_DIR", str(folder / "data"))
        patch.setenv("RTV_KEY_FILE", str(folder / "keys.json"))
        patch.setenv("RTV_JWT_SECRET", SECRET)
        rt = runtime_for(Settings())
        panel = generate_panel(300, 2, seed=17)
        for survey_round in panel.rounds:
            path = write_households(survey_round.frame, folder / f"{survey_round.label}.csv")
            landed = land(rt, path, source_name=path.name, door="cli", filename=path.name)
            report = ingest(landed.ingestion_id)
            assert report["rows_quarantined"] == 0 and report["rows_accepted"] == survey_round.frame.height
        first, second = (r.frame for r in panel.rounds)
        due = _due(first, second)
        by_village = due.group_by("district", "cluster", "village").len().sort("len", "district", "village")
        assert by_village.height >= 2, "the panel must leave follow-ups in at least two villages"
        village_a, village_b = (Village(*row[:3]) for row in by_village.tail(2).iter_rows())
        for name, role in USERS.items():
            add_user(rt.catalog, name, role, PASSWORD)
        assign(rt.catalog, "officer_a", [village_a])
        assign(rt.catalog, "officer_b", [village_b])
        everyone = pl.concat([first, second]).select(
            pl.col("household_id").map_elements(normalise_id, return_dtype=pl.String)
        )
        yield {
            "rt": rt,
            "dev": create_app(Settings()),
            "production": create_app(Settings(env="production")),
            "rounds": [r.label for r in panel.rounds],
            "due": due,
            "everyone": set(everyone["household_id"]),
            "a": village_a,
            "b": village_b,
        }


def _call(app: FastAPI, user: str | None, params: Any = None) -> httpx.Response:
    """Sign in as `user` through the token endpoint (None: no token), then GET the worklist."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            headers = {}
            if user is not None:
                signed = await client.post(
                    "/api/v1/auth/token", data={"username": user, "password": PASSWORD}
                )
                assert signed.status_code == 200, signed.text
                headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
            return await client.get(PATH, params=params, headers=headers)

    return asyncio.run(go())


def _expected(world: dict[str, Any], *villages: Village) -> dict[str, str]:
    """reference → household id of the due households in these villages (all villages when none given)."""
    due = world["due"]
    if villages:
        places = due.select("district", "cluster", "village").iter_rows()
        due = due.filter(pl.Series([place in set(villages) for place in places]))
    keyring = world["rt"].keyring
    return {f"hh-{pseudonym(keyring, i)[:10]}": i for i in due["household_id"]}


def _places(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(h["district"], h["cluster"], h["village"]) for h in body["households"]]


def test_officers_see_only_their_own_villages_and_managers_see_all(world: dict[str, Any]) -> None:
    dev, a, b = world["dev"], world["a"], world["b"]
    latest = world["rounds"][1]

    mine = _call(dev, "officer_a")
    assert mine.status_code == 200, mine.text
    assert mine.headers["cache-control"] == "no-store"
    body = mine.json()
    assert body["round"] == latest and body["upcoming"] is False and body["villages"] == [a.label()]
    expected_a = _expected(world, a)
    assert {h["reference"] for h in body["households"]} == set(expected_a) and body["count"] == len(
        expected_a
    )
    assert set(_places(body)) == {tuple(a)}
    assert {h["last_round"] for h in body["households"]} == {world["rounds"][0]}
    assert all(datetime.fromisoformat(h["last_visit_at"]).tzinfo is not None for h in body["households"])
    # outside production every id is masked, even in the officer's own village
    assert body["ids_revealed"] is False
    assert all(h["household_id"] == mask_id(expected_a[h["reference"]]) for h in body["households"])
    assert _call(dev, "officer_a", {"village": a.label()}).json()["households"] == body["households"]

    # B's village: refused outright, alone or beside A's own, and the refusal is audited
    denied_before = len(events(world["rt"].catalog, actor="officer_a", action="denied"))
    for params in ({"village": b.label()}, {"village": [a.label(), b.label()]}):
        refused = _call(dev, "officer_a", params)
        assert refused.status_code == 403 and "not assigned to you" in refused.json()["detail"]
        assert b.village not in refused.text
    denials = events(world["rt"].catalog, actor="officer_a", action="denied")
    assert len(denials) == denied_before + 2 and denials[0].detail["villages"] == [b.label()]

    theirs = _call(dev, "officer_b").json()
    assert set(_places(theirs)) == {tuple(b)} and {h["reference"] for h in theirs["households"]} == set(
        _expected(world, b)
    )
    assert not {h["reference"] for h in theirs["households"]} & set(expected_a)

    nothing = _call(dev, "officer_c").json()
    assert nothing["households"] == [] and nothing["count"] == 0 and nothing["villages"] == []
    assert "no village is assigned to you" in nothing["message"]
    assert _call(dev, "officer_c", {"village": a.label()}).status_code == 403

    for boss in ("manager1", "engineer1"):
        everything = _call(dev, boss).json()
        assert everything["villages"] is None and everything["count"] == len(world["due"])
        assert {h["reference"] for h in everything["households"]} == set(_expected(world))
        assert _places(everything) == sorted(_places(everything))  # ordered by village
        assert everything["ids_revealed"] is False
        one = _call(dev, boss, {"village": b.label()}).json()
        assert one["villages"] == [b.label()] and set(_places(one)) == {tuple(b)}


def test_in_production_officers_see_ids_in_their_villages_and_managers_everywhere(
    world: dict[str, Any],
) -> None:
    production, a, b = world["production"], world["a"], world["b"]
    for officer, village in (("officer_a", a), ("officer_b", b)):
        body = _call(production, officer).json()
        expected = _expected(world, village)
        assert body["ids_revealed"] is True and body["count"] == len(expected) > 0
        assert {h["reference"]: normalise_id(h["household_id"]) for h in body["households"]} == expected
    assert _call(production, "officer_a", {"village": b.label()}).status_code == 403

    everything = _call(production, "manager1").json()
    assert everything["ids_revealed"] is True
    assert {h["reference"]: normalise_id(h["household_id"]) for h in everything["households"]} == _expected(
        world
    )
    nothing = _call(production, "officer_c").json()
    assert nothing["households"] == [] and nothing["ids_revealed"] is False


def test_every_read_is_audited_with_round_villages_count_and_reveal(world: dict[str, Any]) -> None:
    catalog, a = world["rt"].catalog, world["a"]
    before = len(events(catalog, action="followups_read"))
    dev = _call(world["dev"], "officer_a").json()
    production = _call(world["production"], "officer_a").json()
    _call(world["dev"], "manager1")
    reads = events(catalog, action="followups_read")
    assert len(reads) == before + 3
    manager_read, production_read, dev_read = reads[:3]
    latest = world["rounds"][1]
    assert (dev_read.actor, dev_read.target, dev_read.detail) == (
        "officer_a",
        latest,
        {
            "round": latest,
            "villages": [a.label()],
            "count": dev["count"],
            "ids_revealed": False,
            "upcoming": False,
        },
    )
    assert (
        production_read.detail["ids_revealed"] is True
        and production_read.detail["count"] == production["count"]
    )
    assert manager_read.actor == "manager1" and manager_read.detail["villages"] == "all"


def test_rounds_upcoming_rounds_and_bad_input(world: dict[str, Any]) -> None:
    dev, a = world["dev"], world["a"]
    baseline = _call(dev, "manager1", {"round": world["rounds"][0]}).json()
    assert (
        baseline["round"] == world["rounds"][0] and baseline["count"] == 0
    )  # nothing comes before the first

    upcoming = _call(dev, "manager1", {"round": "2099-Q1"}).json()
    assert upcoming["upcoming"] is True and "no visit yet" in upcoming["message"]
    assert upcoming["count"] == len(world["everyone"])  # every household seen so far is due
    mine = _call(dev, "officer_a", {"round": "2099-Q1"}).json()
    assert mine["count"] > 0 and set(_places(mine)) == {tuple(a)}

    reads = len(events(world["rt"].catalog, action="followups_read"))
    bad = {
        "round": ({"round": "no such round!"}, "round: not a valid survey round"),
        "village": (
            {"village": "Mitooma/Kanyabwanga"},
            "village: write a village as DISTRICT/CLUSTER/VILLAGE",
        ),
        "empty part": ({"village": f"{a.district}//{a.village}"}, "village: write a village as"),
    }
    for name, (params, message) in bad.items():
        answer = _call(dev, "manager1", params)
        assert answer.status_code == 422 and answer.json()["detail"].startswith(message), (name, answer.text)
    too_long = _call(dev, "manager1", {"round": "x" * 41})
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["query", "round"]
    assert len(events(world["rt"].catalog, action="followups_read")) == reads  # refused reads list nothing
    assert _call(dev, None).status_code == 401
