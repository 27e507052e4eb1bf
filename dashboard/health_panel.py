"""The pipeline health panel: score and band first, then runs, quality, model and system with their reasons."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data
from tasks.monitoring.health import WEIGHTS, health_report
from tasks.runtime import Runtime

TTL_HEALTH = 60  # seconds; the score reads the Prefect API and the catalog
BAND_ICONS = {
    "healthy": ":material/check_circle:",
    "degraded": ":material/warning:",
    "unhealthy": ":material/error:",
}


@st.cache_data(ttl=TTL_HEALTH, show_spinner="Checking pipeline health …")
def _health(fingerprint: str, _rt: Runtime) -> dict[str, Any]:
    return health_report(_rt).as_dict()


def show_health() -> None:
    """Render the health score with its band and one metric per component (weights as in tasks.monitoring.health)."""
    rt = data.runtime()
    report = _health(data.key(rt), rt)
    st.subheader("Pipeline health")
    columns = st.columns(1 + len(WEIGHTS))
    columns[0].metric(
        "Health score",
        f"{report['score']:.0f} / 100",
        report["band"],
        delta_color="off",
        help="0.4 runs + 0.3 quality + 0.2 model + 0.1 system, last 7 days; healthy ≥ 90, degraded ≥ 70",
    )
    for column, name in zip(columns[1:], WEIGHTS, strict=True):
        part = report["components"].get(name, {"score": 0.0, "detail": "not measured"})
        column.metric(name.capitalize(), f"{part['score']:.0f}", help=part["detail"])
    message = f"**{report['band'].capitalize()}** ({report['score']:.0f} / 100): " + "; ".join(
        f"{name}: {report['components'][name]['detail']}" for name in WEIGHTS if name in report["components"]
    )
    st.markdown(f"{BAND_ICONS.get(report['band'], ':material/help:')} {message}")
