"""RTV ops dashboard: `rtv dashboard` (or `streamlit run dashboard/app.py`).

Entry script: page config, the sign-in gate, then only the pages the signed-in role may use.
"""

from __future__ import annotations

import streamlit as st

from dashboard import auth
from tasks.protection.users import Action

st.set_page_config(page_title="RTV households", page_icon=":material/home_work:", layout="wide")

# (file, title, icon, what the role must be allowed to do); the first is the default page
PAGES = (
    ("pages/overview.py", "Overview", ":material/dashboard:", Action.READ_ALL),
    ("pages/pipeline_runs.py", "Pipeline runs", ":material/account_tree:", Action.READ_ALL),
    ("pages/data_quality.py", "Data quality", ":material/fact_check:", Action.READ_ALL),
    ("pages/review_queue.py", "Review queue", ":material/rule:", Action.REVIEW),
    ("pages/model.py", "Model", ":material/model_training:", Action.READ_ALL),
    ("pages/households.py", "Households", ":material/groups:", Action.READ_ALL),
    ("pages/progress.py", "Progress", ":material/trending_up:", Action.READ_ALL),
    ("pages/followups.py", "Follow-up worklist", ":material/assignment_return:", Action.READ_ALL),
    ("pages/upload.py", "Upload", ":material/upload_file:", Action.UPLOAD),
)


def no_pages() -> None:
    st.title("Nothing to show for your role")
    st.info(
        f"Your role ({auth.role()}) has no dashboard pages: field officers submit surveys through the "
        "WorkMate app. Ask an engineer for a manager account if you need the dashboard."
    )


user = auth.current_user()
if user is None:
    st.navigation(
        [st.Page(auth.login_page, title="Sign in", icon=":material/login:")], position="hidden"
    ).run()
else:
    pages = [
        st.Page(path, title=title, icon=icon, default=i == 0)
        for i, (path, title, icon, action) in enumerate(PAGES)
        if auth.allowed(action)
    ]
    with st.sidebar:
        st.caption(f"Signed in as **{user['name']}** ({user['role']})")
        if st.button("Sign out", icon=":material/logout:"):
            auth.sign_out()
            st.rerun()
    st.navigation(pages or [st.Page(no_pages, title="Dashboard")]).run()
