"""Model: champion / challenger / previous with metrics, per-district performance, feature importance, decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from dashboard import auth, charts, labels, model_view, prefect_view
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Model")
METRICS = {
    "roc_auc": "ROC AUC",
    "accuracy": "Accuracy",
    "macro_f1_4class": "Macro-F1 (4 statuses)",
    "pr_auc": "PR AUC",
    "brier": "Brier score",
}


def retrain_control() -> None:
    """Engineers only: queue a retrain on a worker."""
    if not auth.allowed(Action.RETRAIN):
        return
    with st.container(border=True):
        st.markdown(
            "**Retrain now** queues the retrain flow on a worker: it trains on every labelled row, "
            "compares with the champion on the same held-out villages and promotes only a better model."
        )
        if st.button("Retrain now", type="primary", icon=":material/model_training:", key="retrain_now"):
            api = prefect_view.prefect_api()
            if not api.reachable:
                st.error(
                    "The Prefect API is not answering, so no retrain can be queued; try again when `rtv up` "
                    "is running (or run `rtv retrain --force` on the server)."
                )
                return
            try:
                run_id = model_view.queue_retrain(force=True)
            except Exception as error:  # noqa: BLE001 - show why, keep the page
                st.error(f"Prefect could not queue the retrain ({type(error).__name__}: {error}).")
                return
            auth.record("retrained", "model", {"flow_run_id": run_id, "via": "dashboard"})
            st.success(
                f"Retrain queued. [Follow it in the Prefect UI]({api.ui_url}/runs/flow-run/{run_id}); the "
                "decision appears below when it finishes."
            )


versions = model_view.model_versions()
if not versions:
    st.info(
        "**No model registered yet.** Ingest labelled surveys (Upload page), then an engineer trains the "
        "first model with *Retrain now* below or `rtv retrain`.",
        icon=":material/info:",
    )
    retrain_control()
    st.stop()

by_alias = {alias: v for v in versions for alias in v["aliases"]}
cards = st.columns(3)
for column, alias in zip(cards, ("champion", "challenger", "previous"), strict=True):
    with column.container(border=True):
        v = by_alias.get(alias)
        if v is None:
            st.metric(alias.capitalize(), "—", help=f"no version carries the {alias} alias")
            continue
        made = datetime.fromtimestamp(v["created"] / 1000, UTC)
        st.metric(alias.capitalize(), f"v{v['version']}", help=f"registered {made:%Y-%m-%d %H:%M} UTC")
        holdout, cv = v["holdout"], v["metrics"]
        st.markdown(
            "\n".join(
                f"- {name}: **{holdout.get(k):.3f}** held-out · {cv.get(k):.3f} CV"
                for k, name in METRICS.items()
                if holdout.get(k) is not None and cv.get(k) is not None and k != "pr_auc"
            )
        )

st.subheader("Every version")
table = pl.DataFrame(
    [
        {
            "version": f"v{v['version']}",
            "aliases": ", ".join(v["aliases"]) or "—",
            "registered": datetime.fromtimestamp(v["created"] / 1000, UTC),
        }
        | {f"cv_{k}": v["metrics"].get(k) for k in METRICS}
        | {f"holdout_{k}": v["holdout"].get(k) for k in METRICS}
        for v in versions
    ]
)
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "version": "Version",
        "aliases": "Aliases",
        "registered": st.column_config.DatetimeColumn("Registered", format="YYYY-MM-DD HH:mm"),
        **{f"cv_{k}": st.column_config.NumberColumn(f"{n} (CV)", format="%.3f") for k, n in METRICS.items()},
        **{
            f"holdout_{k}": st.column_config.NumberColumn(f"{n} (held-out)", format="%.3f")
            for k, n in METRICS.items()
        },
    },
)

champion = by_alias.get("champion")
if champion:
    evaluation = model_view.evaluation(champion["run_id"])
    left, right = st.columns(2)
    districts = evaluation.get("by_district") or {}
    if districts:
        frame = pl.DataFrame([{"district": d, **m} for d, m in districts.items()])
        left.plotly_chart(
            charts.district_metrics(
                frame.rename(METRICS, strict=False), ("ROC AUC", "Accuracy", "Macro-F1 (4 statuses)")
            ),
            key="m_district",
        )
        left.dataframe(
            frame.rename({"district": "District", "households": "Households"} | METRICS, strict=False),
            hide_index=True,
        )
    else:
        left.info("The champion's run has no per-district evaluation.")
    importance = evaluation.get("feature_importance") or {}
    if importance:
        top = (
            pl.DataFrame(
                {"feature": [labels.label(k) for k in importance], "importance": list(importance.values())}
            )
            .sort("importance", descending=True)
            .head(20)
        )
        right.plotly_chart(
            charts.horizontal(
                top, "feature", "importance", "Feature importance (permutation, held-out villages)", fmt=".4f"
            ),
            key="m_importance",
        )
    else:
        right.info("The champion's run has no feature importance.")

st.subheader("Retrain decisions")
history = model_view.decisions()
if history.height == 0:
    st.info("No retrain decision recorded yet: the daily model check writes one every day.")
else:
    st.dataframe(
        history,
        hide_index=True,
        column_config={
            "decided_at": st.column_config.DatetimeColumn("Decided", format="YYYY-MM-DD HH:mm"),
            "decision": "Decision",
            "triggers": "Triggers",
            "reason": st.column_config.TextColumn("Reason", width="large"),
            "version": "Version",
            "alias": "Alias",
            "new_labelled_rows": "New labelled rows",
            "accuracy_on_new": st.column_config.NumberColumn("Accuracy on new rows", format="%.3f"),
        },
    )

retrain_control()
