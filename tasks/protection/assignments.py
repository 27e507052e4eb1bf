"""Villages assigned to field officers: the scope of their follow-up worklist and of the ids they may see.

A village is the triple (district, cluster, village), written `DISTRICT/CLUSTER/VILLAGE`: the real data has
village names that occur in two clusters. The contract's patterns admit no `/` in any of the three names.
Only field officers are assigned villages; managers and engineers see every village anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tasks.platform.catalog import Catalog
from tasks.platform.catalog.assignment_models import OfficerVillage
from tasks.platform.catalog.models import User
from tasks.platform.errors import BadInput

VILLAGE_FORMAT = "DISTRICT/CLUSTER/VILLAGE"
WIDTHS = (60, 60, 80)  # the catalog's column widths, as in `visits`


class Village(NamedTuple):
    """A village as the registry identifies it."""

    district: str
    cluster: str
    village: str

    def label(self) -> str:
        """`DISTRICT/CLUSTER/VILLAGE`."""
        return "/".join(self)


class BadVillage(BadInput, ValueError):
    """A village is not written as three non-empty names separated by `/`."""


class AssignmentError(BadInput, ValueError):
    """Villages cannot be assigned to this user (unknown, or not a field officer)."""


def parse_village(text: str) -> Village:
    """The triple of `DISTRICT/CLUSTER/VILLAGE` (each name stripped); BadVillage with a one-line reason otherwise.

    The reason never repeats the text: the API answers it, and never echoes a submitted value.
    """
    parts = [p.strip() for p in text.split("/")]
    if len(parts) != 3 or not all(parts):
        raise BadVillage(f"write a village as {VILLAGE_FORMAT}: three non-empty names separated by '/'")
    if any(len(p) > width for p, width in zip(parts, WIDTHS, strict=True)):
        raise BadVillage("a district or cluster name is at most 60 characters, a village name at most 80")
    return Village(*parts)


def _officer(catalog: Catalog, name: str) -> None:
    with catalog.session() as s:
        role = s.scalar(select(User.role).where(User.name == name))
    if role is None:
        raise AssignmentError(f"no user named {name!r} (see `rtv users list`)")
    if role != "field_officer":
        raise AssignmentError(
            f"{name!r} is a {role}: managers and engineers see every village; only field officers are assigned"
        )


def assign(catalog: Catalog, name: str, villages: Iterable[Village]) -> list[Village]:
    """Assign villages to a field officer; returns those newly assigned (already assigned ones are kept)."""
    _officer(catalog, name)
    wanted = list(dict.fromkeys(villages))
    with catalog.session() as s:
        held = set(_of(s, name))
        added = [v for v in wanted if v not in held]
        s.add_all(OfficerVillage(user_name=name, **v._asdict()) for v in added)
    return added


def unassign(catalog: Catalog, name: str, villages: Iterable[Village]) -> list[Village]:
    """Take villages from a field officer; returns those that were assigned."""
    _officer(catalog, name)
    wanted = list(dict.fromkeys(villages))
    with catalog.session() as s:
        held = set(_of(s, name))
        removed = [v for v in wanted if v in held]
        for v in removed:
            s.execute(
                delete(OfficerVillage).where(
                    OfficerVillage.user_name == name,
                    OfficerVillage.district == v.district,
                    OfficerVillage.cluster == v.cluster,
                    OfficerVillage.village == v.village,
                )
            )
    return removed


def _of(session: Session, name: str) -> list[Village]:
    rows = session.execute(
        select(OfficerVillage.district, OfficerVillage.cluster, OfficerVillage.village)
        .where(OfficerVillage.user_name == name)
        .order_by(OfficerVillage.district, OfficerVillage.cluster, OfficerVillage.village)
    )
    return [Village(*row) for row in rows]


def villages_of(catalog: Catalog, name: str) -> list[Village]:
    """The villages assigned to a user, sorted (none for an unknown user)."""
    with catalog.session() as s:
        return _of(s, name)


def all_assignments(catalog: Catalog) -> dict[str, list[Village]]:
    """Every user's assigned villages, by user name (users without any are left out)."""
    found: dict[str, list[Village]] = {}
    query = select(
        OfficerVillage.user_name, OfficerVillage.district, OfficerVillage.cluster, OfficerVillage.village
    ).order_by(
        OfficerVillage.user_name, OfficerVillage.district, OfficerVillage.cluster, OfficerVillage.village
    )
    with catalog.session() as s:
        for name, *village in s.execute(query):
            found.setdefault(name, []).append(Village(*village))
    return found
