"""Overview: households assessed, share vulnerable, status and risk band, by place and over time."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import auth, charts, cube, labels, zones
from tasks.ingest.contract import PROGRESS_STATUSES
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Overview")
everything = cube.overview_cube()

if everything.height == 0:
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
    c1, c2, c3, c4 = st.columns(4)
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
    first, last = everything["date"].min(), everything["date"].max()
    dates = c3.date_input("Received between", (first, last), min_value=first, max_value=last, key="ov_dates")
    sources = c4.multiselect(
        "Source", sorted(everything["source"].unique().to_list()), placeholder="All sources", key="ov_source"
    )
filters = cube.Filters(
    districts=tuple(districts),
    clusters=tuple(clusters),
    sources=tuple(sources),
    dates=tuple(dates) if isinstance(dates, tuple | list) and len(dates) == 2 else None,
)
view = cube.filter_cube(everything, filters)
if view.height == 0:
    st.warning("No households match these filters: widen the dates or clear a filter.")
    st.stop()

# ---- headline figures -------------------------------------------------------------------------------------
top = cube.headline(view)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Households assessed", f"{top['households']:,}", border=True)
m2.metric(
    "Share vulnerable",
    f"{top['share_vulnerable']:.1%}",
    border=True,
    help="Struggling or Severely Struggling: the observed ProgressStatus where the survey has the income "
    "module, else the model's prediction",
)
m3.metric(
    "High or critical risk",
    f"{top['high_or_critical']:,}",
    border=True,
    help="Households whose P(vulnerable) puts them in the High or Critical risk band",
)
m4.metric("Mean P(vulnerable)", "—" if top["mean_p"] is None else f"{top['mean_p']:.2f}", border=True)
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
        by_district_status,
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
st.caption("Villages, most vulnerable first")
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

# ---- over time --------------------------------------------------------------------------------------------
st.subheader("Over time")
left, right = st.columns(2)
# text labels: a date axis with one or two weeks shows hours and milliseconds between them
weekly = (
    cube.breakdown(view, "week")
    .sort("week")
    .with_columns(pl.col("week").dt.strftime("week of %d %b %Y").alias("week_label"))
)
left.plotly_chart(charts.trend(weekly, "week_label", "Per week received"), key="ov_week")
per_ingestion = (
    cube.breakdown(view, "ingestion_id", "date", "source")
    .sort(["date", "ingestion_id"])
    .with_columns(
        pl.format("{} · {}", "source", pl.col("ingestion_id").str.slice(-6)).alias("ingestion_label")
    )
)
right.plotly_chart(
    charts.trend(per_ingestion, "ingestion_label", "Per ingestion (source · id)"), key="ov_ingestion"
)
