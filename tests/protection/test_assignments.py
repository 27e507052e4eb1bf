"""Officer village assignments (migration 0012, parsing, roles) and the worklist's PII rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect
from sqlalchemy.exc import IntegrityError

from tasks.platform.catalog import Catalog
from tasks.platform.catalog.assignment_models import OfficerVillage
from tasks.platform.catalog.models import Base
from tasks.protection.assignments import (
    AssignmentError,
    BadVillage,
    Village,
    assign,
    parse_village,
    unassign,
    villages_of,
)
from tasks.protection.users import PERMISSIONS, Action, Role, add_user, can, sees_household_id, sees_pii

PASSWORD = "a-long-field-password"
HOME = Village("Mitooma", "C1", "Kanyabwanga")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        yield Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
        return
    cat = Catalog(request.getfixturevalue("pg_url"))
    yield cat
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM officer_villages")
        conn.exec_driver_sql("DELETE FROM users")


def test_migration_0012_matches_the_model_and_keeps_a_village_once_per_user(catalog: Catalog) -> None:
    columns = {c["name"] for c in inspect(catalog.engine).get_columns("officer_villages")}
    assert columns == {"id", "user_name", "district", "cluster", "village", "assigned_at"}
    with catalog.engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [
        d for d in drift if "officer_villages" in repr(d)
    ] == []  # the migration creates what the model says

    add_user(catalog, "amina", Role.FIELD_OFFICER, PASSWORD)
    row = {"user_name": "amina", **HOME._asdict()}
    with catalog.session() as s:
        s.execute(insert(OfficerVillage).values(**row))
    with pytest.raises(IntegrityError), catalog.session() as s:
        s.execute(insert(OfficerVillage).values(**row))
    with pytest.raises(IntegrityError), catalog.session() as s:  # only users that exist
        s.execute(insert(OfficerVillage).values(**(row | {"user_name": "nobody"})))


def test_only_field_officers_are_assigned_and_assignments_are_idempotent(catalog: Catalog) -> None:
    add_user(catalog, "amina", Role.FIELD_OFFICER, PASSWORD)
    add_user(catalog, "okello", Role.MANAGER, PASSWORD)
    other_cluster = Village("Mitooma", "C2", "Kanyabwanga")  # same name, another cluster: another village
    assert assign(catalog, "amina", [HOME, other_cluster, HOME]) == [HOME, other_cluster]
    assert assign(catalog, "amina", [HOME]) == []
    assert villages_of(catalog, "amina") == [HOME, other_cluster]
    assert unassign(catalog, "amina", [other_cluster, Village("X", "Y", "Z")]) == [other_cluster]
    assert villages_of(catalog, "amina") == [HOME]
    with pytest.raises(AssignmentError, match="only field officers"):
        assign(catalog, "okello", [HOME])
    with pytest.raises(AssignmentError, match="no user named"):
        assign(catalog, "nobody", [HOME])
    assert villages_of(catalog, "okello") == [] and villages_of(catalog, "nobody") == []


def test_a_village_is_three_non_empty_names() -> None:
    assert parse_village(" Mitooma / C1 / Kanyabwanga ") == HOME
    assert HOME.label() == "Mitooma/C1/Kanyabwanga"
    for bad in ("Mitooma/Kanyabwanga", "Mitooma//Kanyabwanga", "a/b/c/d", "", "/ /", "a/b/" + "v" * 81):
        with pytest.raises(BadVillage) as refused:
            parse_village(bad)
        assert bad.strip() == "" or bad not in str(refused.value)  # the reason never repeats the text


def test_worklist_pii_rule_by_role_environment_and_assignment() -> None:
    rule = {
        (role, env, assigned): sees_household_id(role, env, assigned=assigned)
        for role in Role
        for env in ("dev", "staging", "production")
        for assigned in (True, False)
    }
    revealed = {key for key, shown in rule.items() if shown}
    assert revealed == {
        (Role.FIELD_OFFICER, "production", True),  # an officer, in a village assigned to them
        (Role.MANAGER, "production", True),
        (Role.MANAGER, "production", False),
        (Role.ENGINEER, "production", True),
        (Role.ENGINEER, "production", False),
    }
    assert not sees_household_id("admin", "production", assigned=True)  # an unknown role sees nothing


def test_officers_read_followups_without_gaining_general_pii_rights() -> None:
    assert all(can(role, Action.READ_FOLLOWUPS) for role in Role)
    assert PERMISSIONS[Role.FIELD_OFFICER] == {
        Action.SUBMIT,
        Action.READ_OWN,
        Action.READ_FOLLOWUPS,
        Action.VIEW_ASSIGNED_PII,
    }
    assert not can(Role.FIELD_OFFICER, Action.VIEW_PII) and not can(Role.FIELD_OFFICER, Action.READ_ALL)
    assert not sees_pii(
        Role.FIELD_OFFICER, "production"
    )  # exports and the dashboard stay masked for officers
    assert sees_pii(Role.MANAGER, "production") and not sees_pii(Role.MANAGER, "dev")
