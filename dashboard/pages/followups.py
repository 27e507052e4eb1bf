"""Follow-up worklist: households seen in an earlier round and not yet visited in this one, by village."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import streamlit as st

from dashboard import auth, charts, cube, data, labels, progress_data
from tasks.ingest import progress
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Follow-up worklist")
rt = data.runtime()
minimum = rt.settings.min_cell_size
hidden = f"<{minimum}"
version = cube.version(rt)
known = cube.rounds()  # collection order, cached per catalog version

if len(known) < 2:
    so_far = f"only one round, `{known[0]}`, has visits" if known else "no round has visits yet"
    st.info(
        f"**No household is due a follow-up visit yet**: {so_far}. Once a follow-up round is imported (the "
        "Upload page's *Survey round*, or `rtv ingest FILE --round 2026-Q2`), the households seen before and "
        "not yet in it are listed here, by village.",
        icon=":material/info:",
    )
    st.stop()

with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    current = c1.selectbox(
        "Round being visited",
        known[1:],
        index=len(known) - 2,
        key="fu_round",
        help="Households seen in an earlier round and not yet in this one are due a visit",
    )
    due = progress_data.followups(rt, current, version)
    district = c2.selectbox(
        "District",
        [None, *sorted(due["district"].unique().to_list())],
        format_func=lambda d: "All districts" if d is None else d,
        key="fu_district",
    )
    in_district = due if district is None else due.filter(pl.col("district") == district)
    places = in_district.select(list(progress.PLACE)).unique().sort(list(progress.PLACE)).rows()
    village = c3.selectbox(
        "Village",
        [None, *places],
        format_func=lambda v: "All villages" if v is None else " / ".join(v),
        key="fu_village",
    )
chosen = (
    in_district
    if village is None
    else in_district.filter(
        pl.all_horizontal(pl.col(c) == v for c, v in zip(progress.PLACE, village, strict=True))
    )
)
filters = {"round": current, "district": district, "village": None if village is None else "/".join(village)}
reads = st.session_state.setdefault("_followups_read", [])
if filters not in reads:  # every distinct read of the list is audited, not every redraw of it
    auth.record("followups_read", current, {**filters, "count": chosen.height, "door": "dashboard"})
    reads.append(filters)

st.metric("Households due a visit", f"{chosen.height:,}", border=True)
if chosen.height == 0:
    st.success(f"Every household seen before {current} here has been visited in it.")
    st.stop()

# ---- by village -------------------------------------------------------------------------------------------
st.subheader("By village")
per_village = progress.suppress(progress.worklist_by_village(chosen), minimum, progress.WORKLIST_CELLS)
st.caption(
    f"Households due a visit in {current}, at the village where they were last seen. Villages with fewer than "
    f"{minimum} show {hidden} (and are left out of the chart)."
)
left, right = st.columns(2)
village_table = per_village.with_columns(
    pl.col("households").map_elements(lambda n: f"{n:,}", return_dtype=pl.String).fill_null(hidden)
)
left.dataframe(
    village_table,
    hide_index=True,
    height=min(400, 36 + 35 * max(village_table.height, 1)),
    column_config={c: labels.label(c) for c in village_table.columns},
    key="fu_villages",
)
charted = (
    per_village.drop_nulls("households")
    .sort("households", descending=True)
    .head(20)
    .with_columns(pl.concat_str([pl.col(c) for c in progress.PLACE], separator=" / ").alias("place"))
)
if charted.height:
    right.plotly_chart(
        charts.horizontal(
            charted, "place", "households", "Villages with the most households due (20 largest)"
        ),
        key="fu_chart",
    )

# ---- the list ---------------------------------------------------------------------------------------------
LIST_COLUMNS = (
    "household",
    "household_ref",
    "district",
    "cluster",
    "village",
    "last_round",
    "last_status",
    "risk_band",
    "last_seen",
)
rows = chosen.with_columns(
    pl.col("survey_round").alias("last_round"),
    pl.col("observed_status").alias("last_status"),
    pl.col("collected_at").dt.date().alias("last_seen"),
)
st.subheader("Households")
reveal = auth.reveals_pii()
page = progress_data.identified(rt, rows.head(progress_data.SHOWN_ROWS), reveal=reveal)
if reveal:
    auth.record("decrypted", "followups", {"rows": page.height, "purpose": "view"})
st.caption(
    (
        f"The first {progress_data.SHOWN_ROWS:,} of {rows.height:,} are shown; an export holds all. "
        if rows.height > progress_data.SHOWN_ROWS
        else ""
    )
    + (
        "Household ids are shown decrypted for your role."
        if reveal
        else "Household ids are masked (district and shape only); the reference is stable across rounds. Ids "
        "are shown only in production, to roles with PII rights."
    )
)
st.dataframe(
    page.select(LIST_COLUMNS),
    hide_index=True,
    column_config={c: labels.label(c) for c in LIST_COLUMNS}
    | {"last_seen": st.column_config.DateColumn(labels.label("last_seen"), format="YYYY-MM-DD")},
    key="fu_list",
)

if auth.allowed(Action.EXPORT):
    actor = auth.name()
    columns = progress_data.headings(*LIST_COLUMNS, "ingestion_id", "source_row")

    def _export(fmt: str) -> Callable[[], bytes]:
        return lambda: progress_data.export(
            rt, rows, columns, fmt, actor=actor, reveal=reveal, target="followups", detail=filters
        )

    e1, e2, _ = st.columns([1, 1, 2])
    e1.download_button(
        "Export CSV",
        _export("csv"),
        file_name=f"followups-{current}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="fu_export_csv",
    )
    e2.download_button(
        "Export Excel",
        _export("xlsx"),
        file_name=f"followups-{current}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/table:",
        on_click="ignore",
        key="fu_export_xlsx",
    )
