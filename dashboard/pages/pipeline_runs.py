"""Pipeline runs: recent flow runs from the Prefect API, next scheduled runs, failures; the catalog otherwise."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import auth, data, prefect_view
from dashboard.health_panel import show_health
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Pipeline runs")
show_health()
api = prefect_view.prefect_api()
st.link_button("Open the Prefect UI", api.ui_url, icon=":material/open_in_new:")

ingestions = data.ingestions()
rows_by_ingestion = (
    dict(ingestions.select("ingestion_id", "rows_received").iter_rows()) if ingestions.height else {}
)


def catalog_view() -> None:
    """What the catalog knows about recent ingestions (works without Prefect)."""
    st.subheader("Ingestions in the catalog")
    if ingestions.height == 0:
        st.info("No file has been landed yet: upload one on the Upload page or run `rtv ingest FILE`.")
        return
    frame = ingestions.with_columns(
        (pl.col("finished_at") - pl.col("started_at"))
        .dt.total_milliseconds()
        .truediv(1000)
        .alias("duration_s")
    )
    st.dataframe(
        frame.select(
            "received_at",
            "ingestion_id",
            "source",
            "door",
            "status",
            "started_at",
            "duration_s",
            "rows_received",
            "flow_run_id",
            "error",
        ).head(200),
        hide_index=True,
        column_config={
            "received_at": st.column_config.DatetimeColumn("Received", format="YYYY-MM-DD HH:mm"),
            "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm"),
            "duration_s": st.column_config.NumberColumn("Duration (s)", format="%.1f"),
            "rows_received": st.column_config.NumberColumn("Rows", format="%d"),
            "ingestion_id": "Ingestion",
            "source": "Source",
            "door": "Door",
            "status": "Status",
            "flow_run_id": "Flow run",
            "error": "Error",
        },
    )


if not api.url:
    st.warning(
        "No Prefect API is configured for the dashboard (PREFECT_API_URL is not set), so flow runs and "
        "schedules cannot be read. `rtv up` sets it. Below is what the catalog knows."
    )
    catalog_view()
    st.stop()
if not api.reachable:
    st.warning(
        f"The Prefect API at {api.url} is not answering, so flow runs and schedules cannot be read right "
        "now. Landed files wait safely and are processed by the next sweep. Below is what the catalog knows."
    )
    catalog_view()
    st.stop()

try:
    runs = prefect_view.flow_runs(api.url, api.ui_url)
    deployments = prefect_view.deployments(api.url, api.ui_url)
except Exception as error:  # noqa: BLE001 - the page still shows the catalog when Prefect misbehaves
    st.warning(
        f"The Prefect API answered with an error ({type(error).__name__}: {str(error)[:300]}); showing the "
        "catalog instead."
    )
    catalog_view()
    st.stop()

failed = runs.filter(pl.col("state_type").is_in(["FAILED", "CRASHED"]))
m1, m2, m3, m4 = st.columns(4)
m1.metric("Recent runs", f"{runs.height:,}", border=True)
m2.metric(
    "Running or pending",
    f"{runs.filter(pl.col('state_type').is_in(['RUNNING', 'PENDING'])).height:,}",
    border=True,
)
m3.metric("Failed or crashed", f"{failed.height:,}", border=True)
finished = runs.filter(pl.col("state_type").is_in(["COMPLETED", "FAILED", "CRASHED"]))
m4.metric(
    "Success rate",
    f"{finished.filter(pl.col('state_type') == 'COMPLETED').height / finished.height:.0%}"
    if finished.height
    else "—",
    border=True,
)

st.subheader("Recent flow runs")
if runs.height == 0:
    st.info(
        "No flow runs yet. Upload a file on the Upload page (or run `rtv ingest FILE`); scheduled runs "
        "start at the times listed below."
    )
else:
    table = runs.with_columns(
        pl.col("ingestion_id")
        .replace_strict(rows_by_ingestion, default=None, return_dtype=pl.Int64)
        .alias("rows")
    )
    st.dataframe(
        table.select(
            "started", "flow", "deployment", "run", "state", "duration_s", "rows", "ingestion_id", "link"
        ),
        hide_index=True,
        column_config={
            "started": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm:ss"),
            "flow": "Flow",
            "deployment": "Deployment",
            "run": "Run",
            "state": "State",
            "duration_s": st.column_config.NumberColumn("Duration (s)", format="%.1f"),
            "rows": st.column_config.NumberColumn("Rows", format="%d"),
            "ingestion_id": "Ingestion",
            "link": st.column_config.LinkColumn("Prefect UI", display_text="open"),
        },
    )

if failed.height:
    st.subheader("Failures")
    for run in failed.head(10).iter_rows(named=True):
        st.error(
            f"**{run['flow']} / {run['run']}** ({run['state']}, {run['started']:%Y-%m-%d %H:%M}): "
            f"{run['message'] or 'no message'}  \n[Open in the Prefect UI]({run['link']})"
        )

st.subheader("Deployments and next scheduled runs")
if deployments.height == 0:
    st.info(
        "No deployments on this Prefect server: `rtv up` (or `prefect --no-prompt deploy --all`) creates them."
    )
else:
    st.dataframe(
        deployments.sort("next_run", nulls_last=True),
        hide_index=True,
        column_config={
            "deployment": "Deployment",
            "schedule": "Schedule",
            "next_run": st.column_config.DatetimeColumn("Next run", format="YYYY-MM-DD HH:mm z"),
            "paused": "Paused",
            "link": st.column_config.LinkColumn("Prefect UI", display_text="open"),
        },
    )

with st.expander("Ingestions in the catalog"):
    catalog_view()
