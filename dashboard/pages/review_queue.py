"""Review queue: quarantined rows with their reasons; approve (validated → processed → scored) or reject."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import auth, data, labels, rows
from tasks.ingest.contract import PII_COLUMNS
from tasks.ingest.validate import REASONS
from tasks.protection.users import Action
from tasks.workflows.review import ReviewError, approve, reject

auth.require(Action.REVIEW)
st.title("Review queue")
flash = st.session_state.pop("review_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")

queue = data.held()
if queue.height == 0:
    st.info(
        "**Nothing is waiting for review.** Rows that fail validation (impossible values, repeated household "
        "ids) are held here after an import; upload a file on the Upload page to see its held rows.",
        icon=":material/info:",
    )
    st.stop()

rt = data.runtime()
auth.record_view_once("review_queue", {"rows": queue.height})
per_ingestion = (
    queue.group_by("ingestion_id").agg(pl.len().alias("rows")).sort("ingestion_id", descending=True)
)
rules = (
    queue.select(pl.col(REASONS).list.eval(pl.element().struct.field("rule")).list.unique().alias("rule"))
    .explode("rule")["rule"]
    .value_counts()
    .sort(["count", "rule"], descending=[True, False])
)
m1, m2, m3 = st.columns(3)
m1.metric("Rows waiting", f"{queue.height:,}", border=True)
m2.metric("Ingestions", f"{per_ingestion.height:,}", border=True)
m3.metric("Most common rule", rules["rule"][0] if rules.height else "—", border=True)

sources = dict(data.ingestions().select("ingestion_id", "source").iter_rows())
counts = dict(per_ingestion.iter_rows())
left, right = st.columns([2, 3])
ingestion = left.selectbox(
    "Ingestion",
    per_ingestion["ingestion_id"].to_list(),
    key="rq_ingestion",
    format_func=lambda i: f"{i} — {sources.get(i, '?')} ({counts[i]} rows)",
)
rule_filter = right.multiselect("Rules", rules["rule"].to_list(), placeholder="Any rule", key="rq_rules")
in_ingestion = queue.filter(pl.col("ingestion_id") == ingestion)
if rule_filter:
    in_ingestion = in_ingestion.filter(
        pl.col(REASONS).list.eval(pl.element().struct.field("rule").is_in(rule_filter)).list.any()
    )

reveal = auth.reveals_pii()
shown = in_ingestion.head(500)
identifiers = rows.household_ids(rt, shown, reveal=reveal)
if reveal and shown.height:
    auth.record("decrypted", ingestion, {"rows": shown.height, "purpose": "review"})


def _reason_text(reasons: list[dict] | None) -> str:
    parts = []
    for r in reasons or []:
        value = "•••" if r["column"] in PII_COLUMNS else r["value"]
        parts.append(f"{r['rule']}" + (f" ({r['column']} = {value})" if value not in (None, "") else ""))
    return "; ".join(parts)


table = shown.select(
    pl.col("source_row"),
    pl.Series("household", identifiers, dtype=pl.String),
    pl.Series("household_ref", rows.pseudonyms(shown), dtype=pl.String),
    pl.Series("reasons", [_reason_text(r) for r in shown[REASONS].to_list()], dtype=pl.String),
    "district",
    "cluster",
    "village",
    "household_size",
)
st.dataframe(
    table,
    hide_index=True,
    column_config={c: labels.label(c) for c in table.columns if c != "reasons"}
    | {"reasons": st.column_config.TextColumn("Why it is held", width="large")},
)
if in_ingestion.height > shown.height:
    st.caption(
        f"Showing the first {shown.height:,} of {in_ingestion.height:,} rows; filter by rule to find others."
    )

st.subheader("Decide")
round_key = f"rq_rows_{st.session_state.setdefault('rq_round', 0)}"
reason_by_row = dict(zip(table["source_row"].to_list(), table["reasons"].to_list(), strict=True))
chosen = st.multiselect(
    "Rows",
    table["source_row"].to_list(),
    key=round_key,
    placeholder="Choose rows to decide on",
    format_func=lambda r: f"row {r}: {reason_by_row[r][:80]}",
)
note = st.text_input(
    "Note (optional)",
    key=f"rq_note_{st.session_state['rq_round']}",
    placeholder="e.g. values confirmed by phone with the field officer",
)
c1, c2, _ = st.columns([1, 1, 4])
approve_clicked = c1.button(
    "Approve",
    type="primary",
    disabled=not chosen,
    icon=":material/check:",
    help="Move the rows to validated; they are processed and scored like accepted rows",
)
reject_clicked = c2.button(
    "Reject",
    disabled=not chosen,
    icon=":material/close:",
    help="Close the rows without accepting them; they stay in quarantine for the record",
)
if approve_clicked or reject_clicked:
    decision = "approved" if approve_clicked else "rejected"
    try:
        with st.spinner(
            "Approving: writing validated and processed rows, scoring them …"
            if approve_clicked
            else "Rejecting …"
        ):
            act = approve if approve_clicked else reject
            act(rt, ingestion, [int(r) for r in chosen], reviewer=auth.name(), note=note or None)
            auth.record(decision, ingestion, {"rows": [int(r) for r in chosen], "note": note or None})
    except ReviewError as refused:
        st.error(str(refused))
    else:
        data.clear()
        st.session_state["rq_round"] += 1
        what = (
            "moved to validated, processed and scored"
            if approve_clicked
            else "closed; they stay in quarantine"
        )
        st.session_state["review_flash"] = f"{len(chosen)} row(s) of {ingestion} {decision}: {what}."
        st.rerun()
