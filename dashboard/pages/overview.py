"""Overview: distinct households assessed, share vulnerable, status and risk band, by place and per round."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import auth, charts, cube, labels, zones
from tasks.ingest.contract import PROGRESS_STATUSES
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Overview")
every_round = cube.rounds()

if not every_round:
    st.info(
        "**No households yet.** Upload a survey file on the Upload page (or run `rtv ingest FILE`); the "
        "households appear here as soon as the import finishes.",
        icon=":material/info:",
    )
    if auth.allowed(Action.UPLOAD):
        st.page_link("pages/upload.py", label="Upload a survey file", icon=":material/upload_file:")
    st.stop()

# ---- filters ----------------------------------------------------------------------------------------------
with st.container(border=True):
    picked = st.multiselect(
        "Survey rounds",
        every_round,
        default=every_round,
        key="ov_rounds",
        help="Rounds in the order they were collected. Each household counts once, at its latest visit in "
        "the rounds chosen.",
    )
    chosen = [r for r in every_round if r in set(picked)]
    if not chosen:
        st.warning("No survey round is chosen: pick at least one round above to count its households.")
        st.stop()
    everything = cube.overview_cube(chosen)
    c1, c2, c3 = st.columns(3)
    districts = c1.multiselect(
        "District",
        sorted(everything["district"].drop_nulls().unique().to_list()),
        placeholder="All districts",
        key="ov_district",
    )
    in_district = everything.filter(pl.col("district").is_in(districts)) if districts else everything
    clusters = c2.multiselect(
        "Cluster",
        sorted(in_district["cluster"].drop_nulls().unique().to_list()),
        placeholder="All clusters",
        key="ov_cluster",
    )
    sources = c3.multiselect(
        "Source", sorted(everything["source"].unique().to_list()), placeholder="All sources", key="ov_source"
    )
filters = cube.Filters(
    districts=tuple(districts), clusters=tuple(clusters), sources=tuple(sources), rounds=tuple(chosen)
)
view = cube.filter_cube(everything, filters)
top = cube.headline(view)
if top["households"] == 0:
    st.warning("No households match these filters: choose more rounds or clear a filter.")
    st.stop()

# ---- headline figures -------------------------------------------------------------------------------------
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric(
    "Households assessed",
    f"{top['households']:,}",
    border=True,
    help="Distinct households: each counts once, at its latest visit in the chosen rounds",
)
m2.metric(
    "Visits",
    f"{top['visits']:,}",
    border=True,
    help="Survey visits in the chosen rounds: a household seen in two rounds is one household and two "
    "visits (a visit replaced on review counts once)",
)
m3.metric(
    "Share vulnerable",
    f"{top['share_vulnerable']:.1%}",
    border=True,
    help="Struggling or Severely Struggling at the latest visit: the observed ProgressStatus where the "
    "survey has the income module, else the model's prediction",
)
m4.metric(
    "High or critical risk",
    f"{top['high_or_critical']:,}",
    border=True,
    help="Households whose P(vulnerable) puts them in the High or Critical risk band",
)
m5.metric("Mean P(vulnerable)", "—" if top["mean_p"] is None else f"{top['mean_p']:.2f}", border=True)
if top["not_scored"]:
    st.caption(
        f"{top['not_scored']:,} households have no risk band yet: no model was serving when they were "
        "imported (an engineer retrains on the Model page)."
    )

# ---- status and risk band ---------------------------------------------------------------------------------
left, right = st.columns(2)
left.plotly_chart(
    charts.counts_bar(
        cube.breakdown(view, "status"),
        "status",
        PROGRESS_STATUSES,
        charts.STATUS_COLOURS,
        "Households per ProgressStatus",
    ),
    key="ov_status",
)
right.plotly_chart(
    charts.counts_bar(
        cube.breakdown(view, "risk_band"),
        "risk_band",
        zones.BANDS,
        charts.BAND_COLOURS,
        "Households per risk band",
    ),
    key="ov_band",
)

# ---- by place ---------------------------------------------------------------------------------------------
st.subheader("By district, cluster and village")
left, right = st.columns(2)
by_district_status = view.group_by("district", "status").agg(pl.col("households").sum())
left.plotly_chart(
    charts.stacked_by(
        by_district_status.filter(pl.col("households") > 0),
        "district",
        "status",
        PROGRESS_STATUSES,
        charts.STATUS_COLOURS,
        "Households per district",
    ),
    key="ov_district_chart",
)
right.plotly_chart(
    charts.share_bar(cube.breakdown(view, "cluster"), "cluster", "Share vulnerable per cluster (20 largest)"),
    key="ov_cluster_chart",
)
villages = cube.breakdown(view, "district", "cluster", "village").sort(
    ["share_vulnerable", "households"], descending=True
)
st.caption("Villages (where each household was last seen), most vulnerable first")
st.dataframe(
    villages.head(200),
    hide_index=True,
    height=280,
    column_config={
        "district": labels.label("district"),
        "cluster": labels.label("cluster"),
        "village": labels.label("village"),
        "households": st.column_config.NumberColumn(labels.label("households"), format="%d"),
        "vulnerable": st.column_config.NumberColumn(labels.label("vulnerable"), format="%d"),
        "high_or_critical": st.column_config.NumberColumn(labels.label("high_or_critical"), format="%d"),
        "share_vulnerable": st.column_config.ProgressColumn(
            labels.label("share_vulnerable"), format="percent", min_value=0, max_value=1
        ),
    },
)

# ---- per round --------------------------------------------------------------------------------------------
st.subheader("Per survey round")
st.caption(
    "Each household counts once per round it was visited in, so a household seen in two rounds is in both "
    "bars; the Progress page follows the same households from one round to the next."
)
left, right = st.columns(2)
rounds_frame = cube.per_round(view, chosen)
left.plotly_chart(
    charts.trend(rounds_frame, "survey_round", "Households and share vulnerable per round"), key="ov_round"
)
by_round_status = charts.stacked_by(
    cube.per_round(view, chosen, "status"),
    "survey_round",
    "status",
    PROGRESS_STATUSES,
    charts.STATUS_COLOURS,
    "ProgressStatus per round",
)
by_round_status.update_xaxes(categoryorder="array", categoryarray=chosen)  # collection order, not size
right.plotly_chart(by_round_status, key="ov_round_status")
