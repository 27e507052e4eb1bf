"""Households: predictions with risk bands, filters, CSV / Excel export (audited, PII by role, formulas neutralised)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import auth, cube, data, exports, labels, rows, zones
from tasks.ingest.contract import PROGRESS_STATUSES
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Households")
everything = cube.overview_cube()
if everything.height == 0:
    st.info(
        "**No households yet.** Upload a survey file on the Upload page; each household appears here with "
        "its risk band once the import finishes and a model has scored it.",
        icon=":material/info:",
    )
    st.stop()

with st.container(border=True):
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
)
page, total = rows.households(filters)
auth.record_view_once("households", {"filters": filters.chosen()})
if total == 0:
    st.warning("No household matches these filters: clear one to see more.")
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
st.caption(
    f"{total:,} households match; the {shown.height:,} most likely to be vulnerable are shown. "
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
    chosen = filters.chosen()

    def _export(fmt: str):
        return lambda: exports.export(
            rt, rows.all_households(rt, filters), fmt, actor=actor, role=role, filters=chosen
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
        f"An export holds all {total:,} matching households and is recorded in the audit log. Text cells "
        "that start with =, +, - or @ are prefixed with ' so a spreadsheet never runs them as formulas."
    )
