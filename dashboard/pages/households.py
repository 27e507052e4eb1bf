"""Households: each household once (its latest visit in the chosen rounds), filters, its timeline, CSV / Excel export.

Exports are audited, show PII by role and neutralise formulas.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import streamlit as st

from dashboard import auth, cube, data, exports, labels, rows, zones
from tasks.ingest.contract import PROGRESS_STATUSES
from tasks.ingest.household_views import BadReference, answer_changes
from tasks.ingest.households import ANSWERS
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Households")
every_round = cube.rounds()
if not every_round:
    st.info(
        "**No households yet.** Upload a survey file on the Upload page; each household appears here with "
        "its risk band once the import finishes and a model has scored it.",
        icon=":material/info:",
    )
    st.stop()

with st.container(border=True):
    picked = st.multiselect(
        "Survey rounds",
        every_round,
        default=every_round,
        key="hh_rounds",
        help="Rounds in the order they were collected. Each household is listed once, at its latest visit "
        "in the rounds chosen.",
    )
    chosen = [r for r in every_round if r in set(picked)]
    if not chosen:
        st.warning("No survey round is chosen: pick at least one round above to list its households.")
        st.stop()
    everything = cube.overview_cube(chosen).filter(pl.col("households") > 0)
    c1, c2, c3 = st.columns(3)
    districts = c1.multiselect(
        "District",
        sorted(everything["district"].drop_nulls().unique().to_list()),
        placeholder="All districts",
        key="hh_district",
    )
    part = everything.filter(pl.col("district").is_in(districts)) if districts else everything
    clusters = c2.multiselect(
        "Cluster",
        sorted(part["cluster"].drop_nulls().unique().to_list()),
        placeholder="All clusters",
        key="hh_cluster",
    )
    part = part.filter(pl.col("cluster").is_in(clusters)) if clusters else part
    villages = c3.multiselect(
        "Village",
        sorted(part["village"].drop_nulls().unique().to_list()),
        placeholder="All villages",
        key="hh_village",
    )
    c4, c5 = st.columns(2)
    bands = c4.multiselect(
        "Risk band",
        [b for b in zones.BANDS if b in set(everything["risk_band"].to_list())],
        placeholder="All risk bands",
        key="hh_band",
    )
    statuses = c5.multiselect(
        "Status",
        [s for s in PROGRESS_STATUSES if s in set(everything["status"].to_list())],
        placeholder="All statuses",
        key="hh_status",
    )
filters = cube.Filters(
    districts=tuple(districts),
    clusters=tuple(clusters),
    villages=tuple(villages),
    bands=tuple(bands),
    statuses=tuple(statuses),
    rounds=tuple(chosen),
)
matching = cube.headline(cube.filter_cube(everything, filters))  # the counts the Overview shows
total, visits = int(matching["households"] or 0), int(matching["visits"] or 0)
page = rows.households(filters)
auth.record_view_once("households", {"filters": filters.chosen()})
if total == 0:
    st.warning("No household matches these filters: choose more rounds or clear a filter.")
    st.stop()

rt = data.runtime()
reveal = auth.reveals_pii()
identifiers = rows.household_ids(rt, page, reveal=reveal)
if reveal:
    auth.record("decrypted", "households", {"rows": page.height, "purpose": "view"})
shown = page.with_columns(
    pl.Series("household", identifiers, dtype=pl.String),
    pl.Series("household_ref", rows.pseudonyms(page), dtype=pl.String),
).select(
    "household",
    "household_ref",
    "survey_round",
    "visits",
    "district",
    "cluster",
    "village",
    "p_vulnerable",
    "risk_band",
    "predicted_status",
    "observed_status",
    "expected_per_day",
    "model_version",
    "ingestion_id",
    "source_row",
)
m1, m2, _ = st.columns([1, 1, 2])
m1.metric("Households", f"{total:,}", border=True, help="Distinct households that match, each listed once")
m2.metric("Visits", f"{visits:,}", border=True, help="Their survey visits in the chosen rounds")
st.caption(
    f"{total:,} households match; the {shown.height:,} most likely to be vulnerable are shown, each at its "
    "latest visit in the chosen rounds (Round). "
    + (
        "Household ids are shown decrypted for your role."
        if reveal
        else "Household ids are masked (district and shape only) and each row has a stable reference; ids are "
        "shown only in production, to roles with PII rights."
    )
)
st.dataframe(
    shown,
    hide_index=True,
    column_config={c: labels.label(c) for c in shown.columns}
    | {
        "p_vulnerable": st.column_config.ProgressColumn(
            labels.label("p_vulnerable"), format="%.2f", min_value=0, max_value=1
        ),
        "expected_per_day": st.column_config.NumberColumn(labels.label("expected_per_day"), format="$%.2f"),
    },
)

if auth.allowed(Action.EXPORT):
    actor, role = auth.name(), auth.role()
    chosen_filters: dict[str, object] = dict(filters.chosen())

    def _export(fmt: str) -> Callable[[], bytes]:
        return lambda: exports.export(
            rt, rows.all_households(rt, filters), fmt, actor=actor, role=role, filters=chosen_filters
        )

    c1, c2, _ = st.columns([1, 1, 2])
    c1.download_button(
        "Export CSV",
        _export("csv"),
        file_name="households.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
    c2.download_button(
        "Export Excel",
        _export("xlsx"),
        file_name="households.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/table:",
        on_click="ignore",
        disabled=total > exports.EXCEL_MAX_ROWS,
        help=None if total <= exports.EXCEL_MAX_ROWS else "too many rows for one sheet: use CSV",
    )
    st.caption(
        f"An export holds all {total:,} matching households, one row each, and is recorded in the audit log. "
        "Text cells that start with =, +, - or @ are prefixed with ' so a spreadsheet never runs them as "
        "formulas."
    )

# ---- one household over time ------------------------------------------------------------------------------
st.subheader("Household timeline")
reference = st.selectbox(
    "Household reference",
    list(dict.fromkeys(r for r in shown["household_ref"].to_list() if r)),
    index=None,
    accept_new_options=True,
    placeholder="Pick a reference from the table above, or type one (hh-…)",
    key="hh_timeline",
    help="Every visit of the household in every round, replaced visits included",
)
if reference is None:
    st.caption("Choose a household to see its visits round by round and the answers that changed most.")
    st.stop()
try:
    visits_of = rows.timeline(reference)
except BadReference as bad:
    st.error(f"{bad} (the Reference column above and the exports show each household's).")
    st.stop()
if visits_of.height == 0:
    st.info(
        f"No visit of `{reference}` is on record: check the reference (the Reference column above and the "
        "exports show each household's).",
        icon=":material/info:",
    )
    st.stop()
viewed = st.session_state.setdefault("_viewed_timelines", [])
if reference not in viewed:
    auth.record("viewed", "household_timeline", {"reference": reference, "visits": visits_of.height})
    viewed.append(reference)
households_found = visits_of["household_pseudonym"].unique(maintain_order=True).to_list()
if len(households_found) > 1:
    st.warning(
        f"`{reference}` is the start of {len(households_found)} households' pseudonyms; each is shown on its own."
    )
for pseudonym in households_found:
    one = visits_of.filter(pl.col("household_pseudonym") == pseudonym)
    replaced = int(one["superseded"].sum())
    st.caption(
        f"{one.height:,} visits in {one['survey_round'].n_unique():,} rounds"
        + (f"; {replaced:,} replaced on review (marked)" if replaced else "")
    )
    table = one.with_columns(pl.col("collected_at").dt.date()).select(
        "survey_round",
        "collected_at",
        "status",
        "p_vulnerable",
        "risk_band",
        "model_version",
        "district",
        "cluster",
        "village",
        *ANSWERS,
        pl.when(pl.col("superseded")).then(pl.lit("replaced")).otherwise(pl.lit("")).alias("replaced"),
    )
    st.dataframe(
        table,
        hide_index=True,
        key=f"hh_timeline_{pseudonym}",
        column_config={c: labels.label(c) for c in table.columns}
        | {
            "p_vulnerable": st.column_config.NumberColumn(labels.label("p_vulnerable"), format="%.2f"),
            "replaced": "Replaced on review",
        },
    )
    if one.filter(~pl.col("superseded")).height > 1:
        changes = answer_changes(one).with_columns(
            pl.col("answer").replace_strict({a: labels.label(a) for a in ANSWERS}, return_dtype=pl.String)
        )
        st.caption("What changed between the first and the latest visit, largest change first")
        st.dataframe(
            changes.select("answer", "first", "latest", "change"),
            hide_index=True,
            key=f"hh_changes_{pseudonym}",
            column_config={
                "answer": "Answer",
                "first": st.column_config.NumberColumn("First visit", format="%.2f"),
                "latest": st.column_config.NumberColumn("Latest visit", format="%.2f"),
                "change": st.column_config.NumberColumn("Change", format="%+.2f"),
            },
        )
