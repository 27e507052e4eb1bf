"""Upload: land a survey file through the same `land` as every other door, queue the ingest flow, follow it."""

from __future__ import annotations

import re

import streamlit as st

from dashboard import auth, data, importing
from tasks.ingest.landing import EmptyUpload, TooLarge
from tasks.ingest.report import ImportReport
from tasks.ingest.rounds import BadRoundLabel
from tasks.protection.users import Action

auth.require(Action.UPLOAD)
st.title("Upload a survey file")
rt = data.runtime()
limit = data.upload_limit_mb(rt)
TRACK = "upload_tracking"

st.markdown(
    f"CSV (comma, semicolon or tab separated), Excel, JSON or JSON lines, Parquet, and KoboToolbox / ODK Central exports, "
    f"**up to {limit} MB** per file. The format is recognised from the content, not the extension."
)
uploaded = st.file_uploader(
    "Survey file", key="upload_file", max_upload_size=limit, help=f"largest file: {limit} MB"
)
source_column, round_column = st.columns([3, 2])
source = source_column.text_input(
    "Source (optional)",
    key="upload_source",
    placeholder="where the file comes from, e.g. Kanungu Q3 assessment; default: the file name",
)
survey_round = round_column.text_input(
    "Survey round (optional)",
    key="upload_round",
    max_chars=40,
    placeholder="e.g. 2025-baseline or 2026-Q2",
    help="the survey campaign of every row of this file; left empty, each row's submission date decides "
    "(else today), by calendar quarter unless configured otherwise",
)
if st.button("Import", type="primary", disabled=uploaded is None, icon=":material/upload:"):
    with st.status(f"Landing {uploaded.name} …", expanded=True) as status:
        st.write("Hashing and encrypting the bytes into the raw zone, then queuing the ingest flow …")
        try:
            st.session_state[TRACK] = importing.land_upload(
                rt, uploaded, uploaded.name, source, auth.name(), survey_round
            )
        except (TooLarge, EmptyUpload, BadRoundLabel) as refused:
            status.update(label=f"Refused: {refused}", state="error")
            st.stop()
        landed = st.session_state[TRACK]
        status.update(
            label="These bytes were imported before: showing that import"
            if landed["duplicate"]
            else f"Landed as {landed['id']}",
            state="complete",
            expanded=False,
        )
        data.clear()

track = st.session_state.get(TRACK)
if track is None:
    st.info(
        "Drop a file above and press **Import**. You will see its progress here, then its import report.",
        icon=":material/info:",
    )
    st.stop()


def links() -> None:
    st.markdown("**Next:**")
    c1, c2, c3, c4 = st.columns(4)
    c1.page_link("pages/overview.py", label="Overview", icon=":material/dashboard:")
    if auth.allowed(Action.REVIEW):
        c2.page_link("pages/review_queue.py", label="Review queue", icon=":material/rule:")
    c3.page_link("pages/data_quality.py", label="Data quality", icon=":material/fact_check:")
    c4.page_link("pages/households.py", label="Households", icon=":material/groups:")


def show_report(report: ImportReport) -> None:
    if report.status == "rejected":
        st.error(
            f"**Rejected:** {report.reason}. The bytes stay in the raw zone; fix the file and upload it again."
        )
    elif report.status == "failed":
        st.error(
            f"**The ingest failed:** {report.reason or 'see the Pipeline runs page'}. An engineer can re-run it "
            f"with `rtv rerun {report.ingestion_id}`."
        )
    else:
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Rows received", f"{report.rows_received:,}", border=True)
        m2.metric("Accepted", f"{report.rows_accepted:,}", border=True)
        m3.metric("Quarantined for review", f"{report.rows_quarantined:,}", border=True)
        m4.metric("Duplicates", f"{report.rows_duplicate:,}", border=True)
    with st.container(border=True):
        # the report's headings are written for a whole page; inside this box they step down two levels
        st.markdown(re.sub(r"^(#{1,4}) ", lambda m: f"{m[1]}## ", report.to_markdown(), flags=re.M))
    links()


ingestion = rt.catalog.get(track["id"])
if ingestion is None:
    st.error(f"Ingestion {track['id']} is not in the catalog any more.")
    st.stop()
if track.get("duplicate"):
    st.info(
        f"**{track['name']}** was already imported as `{ingestion.id}` on {ingestion.received_at:%Y-%m-%d %H:%M} "
        "UTC: nothing was stored again. Its report:"
    )
    show_report(importing.report_of(ingestion, track))
    st.stop()

finished = ingestion.status in data.FINAL


@st.fragment(run_every=None if finished else 2)
def follow() -> None:
    """Poll the catalog (and the flow run) until the import is final, then rerun the page to show the report."""
    current = rt.catalog.get(track["id"])
    if current.status in data.FINAL:
        if not finished:
            data.clear()
            st.rerun()
        st.progress(1.0, text=f"{track['name']}: {current.status.replace('_', ' ')}")
        return
    step, state = importing.progress(current)
    value, text = importing.PROGRESS[step]
    if state and state["type"] in ("FAILED", "CRASHED"):
        st.error(f"The flow run {state['name'].lower()}: {state['message'] or 'no message'}")
    st.progress(
        value,
        text=f"{track['name']} ({current.id}): {text}" + (f" · flow run {state['name']}" if state else ""),
    )
    if step == "landed" and not track.get("queued"):
        st.warning(
            f"The file is landed safely, but {track.get('why', 'the flow could not be queued')}: it will be "
            "processed by the next sweep (the `ingest-landed` and weekly flows). This page updates when it is."
        )


follow()
if finished:
    show_report(importing.report_of(ingestion, track))
