"""Sign-in against the catalog's users; the signed-in user and role live in `st.session_state`."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data
from tasks.protection import audit
from tasks.protection.users import Action, authenticate, can, sees_pii

USER = "user"
VERBS = {
    Action.READ_ALL: "read the dashboard pages",
    Action.REVIEW: "approve or reject quarantined rows",
    Action.EXPORT: "export households",
    Action.UPLOAD: "upload survey files",
    Action.RETRAIN: "retrain the model",
    Action.VIEW_PII: "see household ids",
}


def current_user() -> dict[str, str] | None:
    """{'name', 'role'} of the signed-in user, or None."""
    return st.session_state.get(USER)


def name() -> str:
    user = current_user()
    return user["name"] if user else "anonymous"


def role() -> str:
    user = current_user()
    return user["role"] if user else ""


def allowed(action: Action) -> bool:
    """Whether the signed-in user's role may take an action."""
    return can(role(), action)


def require(action: Action) -> None:
    """Stop the page with a clear message when the role may not take this action."""
    if not allowed(action):
        st.error(
            f"Your role ({role() or 'not signed in'}) cannot {VERBS.get(action, action.value)}. "
            "Ask an engineer if you need it."
        )
        st.stop()


def reveals_pii() -> bool:
    """Whether decrypted household ids are shown to this user (production, roles with PII rights)."""
    return sees_pii(role(), data.runtime().settings.env)


def record(action: str, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Append an audit event by the signed-in user."""
    audit.record(data.runtime().catalog, name(), action, target, detail)


def record_view_once(page: str, detail: dict[str, Any] | None = None) -> None:
    """Record a `viewed` event the first time this session shows a page of household-level data."""
    seen = st.session_state.setdefault("_viewed_pages", [])
    if page not in seen:
        record("viewed", page, detail)
        seen.append(page)


def login_page() -> None:
    """The sign-in form (the only page before signing in)."""
    st.title("RTV household dashboard")
    st.caption("Raising The Village · household vulnerability in south-western Uganda")
    rt = data.runtime()
    with st.form("login"):
        user_name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        user = authenticate(rt.catalog, user_name.strip(), password)
        if user is None:
            audit.record(
                rt.catalog,
                user_name.strip()[:120] or "(empty)",
                "denied",
                "dashboard",
                {"reason": "sign-in failed"},
            )
            st.error("Wrong user name or password.")
        else:
            st.session_state[USER] = {"name": user.name, "role": user.role}
            audit.record(rt.catalog, user.name, "signed_in", "dashboard")
            st.rerun()
    st.info(
        "Sign in with your dashboard account. On a new machine `rtv up` creates a first engineer, "
        "`admin`, and writes its password to `data/run/admin-password`."
    )


def sign_out() -> None:
    """Forget the signed-in user."""
    for k in (USER, "_viewed_pages", "login_password"):
        st.session_state.pop(k, None)
