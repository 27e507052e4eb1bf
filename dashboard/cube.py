"""The Overview cube: households counted by ingestion, date, place, status and risk band; filters and totals.

Only the cube is cached (a few thousand rows even for a million households), keyed by the zone objects it
read, so a new upload or an approval shows at once while a rerun never rescans the zones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
import streamlit as st

from dashboard.data import TTL_ZONES, key, runtime
from dashboard.zones import NOT_SCORED, VULNERABLE, household_parts, households_lazy
from tasks.runtime import Runtime

HIGH_RISK = ("High", "Critical")


@st.cache_data(ttl=TTL_ZONES, show_spinner="Summarising households …", max_entries=4)
def _cube(fp: str, predictions: tuple[str, ...], unscored: tuple[str, ...], _rt: Runtime) -> pl.DataFrame:
    frame = households_lazy(_rt, predictions, unscored)
    if frame is None:
        return pl.DataFrame()
    cube = (
        frame.group_by("ingestion_id", "date", "district", "cluster", "village", "status", "risk_band")
        .agg(
            pl.len().alias("households"),
            pl.col("status").is_in(VULNERABLE).sum().alias("vulnerable"),
            pl.col("p_vulnerable").is_not_null().sum().alias("scored"),
            pl.col("p_vulnerable").sum().alias("p_sum"),
        )
        .collect()
    )
    sources = pl.DataFrame(
        [(i.id, i.source) for i in _rt.catalog.list_ingestions(limit=1_000_000)],
        schema={"ingestion_id": pl.String, "source": pl.String},
        orient="row",
    )
    return cube.join(sources, on="ingestion_id", how="left").with_columns(
        pl.col("source").fill_null("unknown"),
        pl.col("date").dt.truncate("1w").alias("week"),
    )


def overview_cube() -> pl.DataFrame:
    """Households counted by ingestion, date, district, cluster, village, status and risk band (cached).

    `status` is the observed ProgressStatus where the survey has the income module, else the predicted one.
    """
    rt = runtime()
    predictions, unscored = household_parts(rt)
    return _cube(key(rt), predictions, unscored, rt)


@dataclass(frozen=True)
class Filters:
    """What the Overview and Households pages filter on; empty means everything."""

    districts: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    dates: tuple[date, date] | None = None

    def expr(self, columns: list[str]) -> pl.Expr:
        """A polars predicate over the columns a frame has."""
        predicate = pl.lit(True)
        for column, values in (
            ("district", self.districts),
            ("cluster", self.clusters),
            ("village", self.villages),
            ("source", self.sources),
            ("risk_band", self.bands),
            ("status", self.statuses),
        ):
            if values and column in columns:
                predicate &= pl.col(column).is_in(list(values))
        if self.dates and "date" in columns:
            predicate &= pl.col("date").is_between(*self.dates)
        return predicate

    def chosen(self) -> dict[str, list[object]]:
        """The filters that are set, as plain lists (for the audit log)."""
        return {k: list(v) for k, v in self.__dict__.items() if v}


def filter_cube(cube: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """The cube rows that match the filters."""
    return cube.filter(filters.expr(cube.columns)) if cube.height else cube


def headline(cube: pl.DataFrame) -> dict[str, float | int | None]:
    """Households, share vulnerable, high-or-critical count, mean P(vulnerable), unscored households."""
    if cube.height == 0:
        return {
            "households": 0,
            "share_vulnerable": None,
            "high_or_critical": 0,
            "mean_p": None,
            "not_scored": 0,
        }
    households = int(cube["households"].sum())
    scored = int(cube["scored"].sum())
    return {
        "households": households,
        "share_vulnerable": float(cube["vulnerable"].sum()) / households if households else None,
        "high_or_critical": int(cube.filter(pl.col("risk_band").is_in(HIGH_RISK))["households"].sum()),
        "mean_p": float(cube["p_sum"].sum()) / scored if scored else None,
        "not_scored": int(cube.filter(pl.col("risk_band") == NOT_SCORED)["households"].sum()),
    }


def breakdown(cube: pl.DataFrame, *by: str) -> pl.DataFrame:
    """Households, vulnerable and share vulnerable per group, largest first."""
    return (
        cube.group_by(*by)
        .agg(
            pl.col("households").sum(),
            pl.col("vulnerable").sum(),
            pl.col("households").filter(pl.col("risk_band").is_in(HIGH_RISK)).sum().alias("high_or_critical"),
        )
        .with_columns((pl.col("vulnerable") / pl.col("households")).alias("share_vulnerable"))
        .sort("households", descending=True)
    )
