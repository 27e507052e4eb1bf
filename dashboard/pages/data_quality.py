"""Data quality: pass rate, completeness, fixes and quarantine reasons per ingestion; drift; GX Data Docs."""

from __future__ import annotations

import polars as pl
import streamlit as st
import streamlit.components.v1 as components

from dashboard import auth, charts, data, data_docs, labels
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Data quality")
ingestions = data.ingestions()
done = ingestions.filter(pl.col("status").is_in(data.DONE))
if done.height == 0:
    st.info(
        "**No ingestion has finished yet.** Upload a survey file on the Upload page (or run "
        "`rtv ingest FILE`); its pass rate, completeness and quarantine reasons appear here.",
        icon=":material/info:",
    )
    if ingestions.height:
        st.caption("Landed so far:")
        st.dataframe(
            ingestions.select("received_at", "ingestion_id", "source", "status", "error"), hide_index=True
        )
    st.stop()

received = int(done["rows_received"].sum())
accepted, quarantined = int(done["rows_accepted"].sum()), int(done["rows_quarantined"].sum())
bad = ingestions.filter(pl.col("status").is_in(["rejected", "failed"]))
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric("Ingestions", f"{done.height:,}", border=True)
m2.metric("Rows received", f"{received:,}", border=True)
m3.metric(
    "Pass rate",
    f"{accepted / (accepted + quarantined):.1%}" if accepted + quarantined else "—",
    border=True,
    help="accepted ÷ (accepted + quarantined); duplicates are not validated again",
)
m4.metric("Quarantined", f"{quarantined:,}", border=True)
m5.metric("Rejected or failed", f"{bad.height:,}", border=True)

st.subheader("Per ingestion")
st.dataframe(
    done.select(
        "received_at",
        "ingestion_id",
        "source",
        "door",
        "status",
        "rows_received",
        "rows_accepted",
        "rows_quarantined",
        "rows_duplicate",
        "pass_rate",
        "completeness",
        "fixes",
    ),
    hide_index=True,
    column_config={
        "received_at": st.column_config.DatetimeColumn("Received", format="YYYY-MM-DD HH:mm"),
        "ingestion_id": "Ingestion",
        "source": "Source",
        "door": "Door",
        "status": "Status",
        "rows_received": st.column_config.NumberColumn("Received", format="%d"),
        "rows_accepted": st.column_config.NumberColumn("Accepted", format="%d"),
        "rows_quarantined": st.column_config.NumberColumn("Quarantined", format="%d"),
        "rows_duplicate": st.column_config.NumberColumn("Duplicate", format="%d"),
        "pass_rate": st.column_config.ProgressColumn("Pass rate", format="percent", min_value=0, max_value=1),
        "completeness": st.column_config.NumberColumn("Completeness", format="percent"),
        "fixes": st.column_config.NumberColumn("Fixes", format="%d"),
    },
)
st.plotly_chart(charts.quality_trend(done.sort("received_at")), key="dq_trend")

left, right = st.columns(2)
reasons = data.counts_by(done, "quarantine_reasons")
if reasons.height:
    by_rule = reasons.group_by("name").agg(pl.col("rows").sum()).sort("rows", descending=True).head(25)
    left.plotly_chart(
        charts.horizontal(by_rule, "name", "rows", "Quarantined rows per rule", "#c62828"), key="dq_rules"
    )
else:
    left.success("No row was quarantined.")
fixes = data.counts_by(done, "fix_kinds")
if fixes.height:
    by_kind = fixes.group_by("name").agg(pl.col("rows").sum()).sort("rows", descending=True)
    right.plotly_chart(
        charts.horizontal(by_kind, "name", "rows", "Values repaired by conform, per kind"), key="dq_fixes"
    )
else:
    right.info("Conform repaired nothing: every header and value arrived as the contract expects.")
if reasons.height:
    with st.expander("Quarantine counts per ingestion and rule"):
        st.dataframe(reasons.pivot("ingestion_id", index="name", values="rows").fill_null(0), hide_index=True)

st.subheader("Drift")
drift = data.drift_scores()
if drift.height == 0:
    st.info(
        "No drift scores yet: once a model is serving, each ingestion and the weekly check compare the "
        "monitored features with the model's training data and list each feature's score here."
    )
else:
    checks = drift.unique(["computed_at", "scope", "ingestion_id"], keep="first", maintain_order=True)
    latest = checks.row(0, named=True)
    in_latest = drift.filter(
        (pl.col("computed_at") == latest["computed_at"]) & (pl.col("scope") == latest["scope"])
    )
    flagged = in_latest.filter(pl.col("flag"))["feature"].to_list()
    d1, d2, d3 = st.columns(3)
    d1.metric("Drift checks stored", f"{checks.height:,}", border=True)
    d2.metric(
        "Drift score",
        f"{latest['score']:.3f}" if latest["score"] is not None else "—",
        border=True,
        help="the largest PSI of the latest check",
    )
    d3.metric(
        "Features flagged",
        f"{len(flagged)} of {in_latest.height}",
        border=True,
        help=", ".join(flagged) or "none",
    )
    st.caption(f"Latest check: {latest['scope']} {latest['ingestion_id'] or ''} at {latest['computed_at']}")
    programme = in_latest.filter((pl.col("kind") == "programme") & pl.col("changed"))["feature"].to_list()
    if programme:
        st.info(
            "**Programme change, not drift:** "
            + ", ".join(labels.label(f) for f in programme)
            + " moved. These are the outcome and the incomes it is made of, which the programme exists to "
            "change, so they are reported here and never trigger a retrain; the model's inputs are what "
            "drift is judged on.",
            icon=":material/trending_up:",
        )
    scored = in_latest.drop_nulls("psi")
    if scored.height:
        named = scored.select(pl.col("feature").map_elements(labels.label, return_dtype=pl.String), "psi")
        st.plotly_chart(
            charts.horizontal(named, "feature", "psi", "PSI per feature, latest check", "#6a1b9a", fmt=".3f"),
            key="dq_drift",
        )
    st.dataframe(
        checks.select("computed_at", "scope", "ingestion_id", "rows", "score", "drift"),
        hide_index=True,
        column_config={
            "computed_at": "Checked",
            "scope": "Scope",
            "ingestion_id": "Ingestion",
            "rows": "Rows",
            "score": st.column_config.NumberColumn("Score", format="%.3f"),
            "drift": "Drift",
        },
    )

if bad.height:
    st.subheader("Rejected or failed")
    st.dataframe(bad.select("received_at", "ingestion_id", "source", "status", "error"), hide_index=True)

st.subheader("One ingestion")
chosen = st.selectbox(
    "Ingestion",
    done["ingestion_id"].to_list(),
    key="dq_ingestion",
    format_func=lambda i: f"{i} — {dict(done.select('ingestion_id', 'source').iter_rows())[i]}",
)
outcomes = data.rule_outcomes(chosen)
if outcomes.height:
    st.caption("Great Expectations rules that failed rows of this ingestion")
    st.dataframe(outcomes.sort("unexpected", descending=True), hide_index=True)
if st.toggle("Open the Great Expectations Data Docs", key="dq_docs"):
    docs = data_docs.data_docs(chosen)
    if not docs:
        st.info("This ingestion has no Data Docs (it was rejected before validation, or they were archived).")
    else:
        page = st.selectbox("Page", list(docs["pages"]), key="dq_docs_page")
        st.download_button(
            "Download the whole Data Docs site (zip)",
            docs["zip"],
            file_name=f"{chosen}-data-docs.zip",
            mime="application/zip",
            icon=":material/download:",
        )
        components.html(docs["pages"][page], height=900, scrolling=True)
