"""Users and roles: who may do what. Passwords are hashed with argon2 (argon2-cffi)."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tasks.platform.catalog import Catalog
from tasks.platform.catalog.models import User

_hasher = PasswordHasher()
MIN_PASSWORD = 10


class Role(StrEnum):
    """The three kinds of user."""

    FIELD_OFFICER = "field_officer"
    MANAGER = "manager"
    ENGINEER = "engineer"


class Action(StrEnum):
    """Things a role may be allowed to do."""

    SUBMIT = "submit"  # post surveys and files
    READ_OWN = "read_own"  # read one's own ingestions
    READ_ALL = "read_all"  # read every ingestion, the dashboard pages
    REVIEW = "review"  # approve or reject quarantined rows
    EXPORT = "export"  # download households
    UPLOAD = "upload"  # the dashboard uploader
    VIEW_PII = "view_pii"  # see decrypted household ids (production only)
    READ_FOLLOWUPS = "read_followups"  # the follow-up worklist (field officers: their assigned villages only)
    VIEW_ASSIGNED_PII = (
        "view_assigned_pii"  # decrypted ids of households in one's assigned villages (production)
    )
    RETRAIN = "retrain"
    ROTATE_KEYS = "rotate_keys"


PERMISSIONS: dict[Role, frozenset[Action]] = {
    # an officer needs a household's id to find the house: only in the villages assigned to them
    Role.FIELD_OFFICER: frozenset(
        {Action.SUBMIT, Action.READ_OWN, Action.READ_FOLLOWUPS, Action.VIEW_ASSIGNED_PII}
    ),
    # managers read everything and review quarantine; field devices (officers) submit through the API
    Role.MANAGER: frozenset(
        {
            Action.READ_OWN,
            Action.READ_ALL,
            Action.REVIEW,
            Action.EXPORT,
            Action.UPLOAD,
            Action.VIEW_PII,
            Action.READ_FOLLOWUPS,
        }
    ),
    Role.ENGINEER: frozenset(Action),
}


class UserError(ValueError):
    """A user cannot be created or signed in; one line, never echoing the password."""


def can(role: str, action: Action) -> bool:
    """Whether a role may take an action."""
    try:
        return action in PERMISSIONS[Role(role)]
    except ValueError:
        return False


def sees_pii(role: str, env: str) -> bool:
    """Decrypted identifiers are shown only in production, and only to roles with PII rights."""
    return env == "production" and can(role, Action.VIEW_PII)


def sees_household_id(role: str, env: str, *, assigned: bool) -> bool:
    """The worklist's rule: in production, PII roles see every id and officers those in villages assigned to them."""
    if env != "production":
        return False
    return can(role, Action.VIEW_PII) or (assigned and can(role, Action.VIEW_ASSIGNED_PII))


def add_user(catalog: Catalog, name: str, role: str, password: str) -> User:
    """Create a user; the name must be new, the role known and the password at least 10 characters."""
    if (
        not name
        or len(name) > 120
        or not name.replace("-", "").replace("_", "").replace(".", "").replace("@", "").isalnum()
    ):
        raise UserError("user names are 1-120 letters, digits, '.', '-', '_' or '@'")
    try:
        Role(role)
    except ValueError:
        raise UserError(f"unknown role {role!r}; choose one of {', '.join(r.value for r in Role)}") from None
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords need at least {MIN_PASSWORD} characters")
    try:
        with catalog.session() as s:
            user = User(name=name, role=role, password_hash=_hasher.hash(password))
            s.add(user)
        return user
    except IntegrityError:
        raise UserError(f"user {name!r} already exists") from None


def authenticate(catalog: Catalog, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (same answer for unknown names and bad passwords)."""
    with catalog.session() as s:
        user = s.scalar(select(User).where(User.name == name))
    if user is None or not user.active:
        _hasher.hash(password)  # spend the same time as a real check: names cannot be probed by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def get_user(catalog: Catalog, name: str) -> User | None:
    """A user by name."""
    with catalog.session() as s:
        return s.scalar(select(User).where(User.name == name))


def list_users(catalog: Catalog) -> list[User]:
    """Every user, by name."""
    with catalog.session() as s:
        return list(s.scalars(select(User).order_by(User.name)))


def ensure_first_engineer(catalog: Catalog, password_file: Path, name: str = "admin") -> str | None:
    """Create an engineer when the catalog has no user yet; its random password goes to `password_file` (0600).

    Returns the new password (to be shown once), or None when users already exist.
    """
    with catalog.session() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return None
    password = secrets.token_urlsafe(12)
    add_user(catalog, name, Role.ENGINEER, password)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{name}\n{password}\n")
    return password
