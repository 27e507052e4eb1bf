"""The Overview cube: distinct households by round, place, source, status and risk band; filters and totals.

Counts come from the catalog's visits (`tasks.ingest.household_views`): each household once, at its latest
visit in the chosen rounds. Only the cube is cached (thousands of rows even for a million households), keyed
by the Settings, the chosen rounds and the catalog's version, so a new ingestion or approval shows at once
while a rerun never counts again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from dashboard.data import TTL_ZONES, key, runtime
from dashboard.zones import NOT_SCORED
from tasks.ingest import household_views
from tasks.runtime import Runtime

HIGH_RISK = ("High", "Critical")


def version(rt: Runtime) -> tuple[Any, ...]:
    """The catalog's version of the counted visits (changes with every ingestion, approval or backfill).

    Asked on every rerun: a few index seeks (milliseconds at 2M visits), so nothing new is ever hidden.
    """
    return household_views.catalog_version(rt.catalog)


@st.cache_data(ttl=TTL_ZONES, show_spinner=False, max_entries=8)
def _rounds(fp: str, catalog_version: tuple[Any, ...], _rt: Runtime) -> list[str]:
    return household_views.round_order(_rt.catalog)


def rounds() -> list[str]:
    """Survey rounds with final visits, in collection order (cached per catalog version)."""
    rt = runtime()
    return _rounds(key(rt), version(rt), rt)


@st.cache_data(ttl=TTL_ZONES, show_spinner="Counting households …", max_entries=8)
def _cube(fp: str, catalog_version: tuple[Any, ...], chosen: tuple[str, ...], _rt: Runtime) -> pl.DataFrame:
    return household_views.household_cube(_rt.catalog, chosen)


def overview_cube(chosen: Sequence[str]) -> pl.DataFrame:
    """Households (each once, at its latest visit in `chosen` rounds), per round, place, source, status, band.

    `status` is the observed ProgressStatus where the survey has the income module, else the predicted one.
    Columns: see `household_views.household_cube`.
    """
    rt = runtime()
    return _cube(key(rt), version(rt), tuple(chosen), rt)


@dataclass(frozen=True)
class Filters:
    """What the Overview and Households pages filter on; empty means everything (rounds: every round)."""

    districts: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    rounds: tuple[str, ...] = ()

    def expr(self, columns: list[str]) -> pl.Expr:
        """A polars predicate over the columns a frame has (rounds are chosen when counting, not here)."""
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
        return predicate

    def selection(self, every_round: Sequence[str]) -> household_views.Selection:
        """The catalog query these filters stand for; no rounds chosen means `every_round`."""
        return household_views.Selection(
            rounds=self.rounds or tuple(every_round),
            districts=self.districts,
            clusters=self.clusters,
            villages=self.villages,
            sources=self.sources,
            statuses=self.statuses,
            bands=self.bands,
        )

    def chosen(self) -> dict[str, list[object]]:
        """The filters that are set, as plain lists (for the audit log)."""
        return {k: list(v) for k, v in self.__dict__.items() if v}


def filter_cube(cube: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """The cube rows that match the filters."""
    return cube.filter(filters.expr(cube.columns)) if cube.height else cube


def headline(cube: pl.DataFrame) -> dict[str, float | int | None]:
    """Households, their visits, share vulnerable, high-or-critical count, mean P(vulnerable), unscored ones.

    Each household counts once, at its latest visit; `visits` are the visits of those households in the
    chosen rounds, so a district filter keeps the households last seen there and all of their visits.
    """
    households = int(cube["households"].sum()) if cube.height else 0
    if households == 0:
        return {
            "households": 0,
            "visits": 0,
            "share_vulnerable": None,
            "high_or_critical": 0,
            "mean_p": None,
            "not_scored": 0,
        }
    scored = int(cube["scored"].sum())
    return {
        "households": households,
        "visits": int(cube["household_visits"].sum()),
        "share_vulnerable": float(cube["vulnerable"].sum()) / households,
        "high_or_critical": int(cube.filter(pl.col("risk_band").is_in(HIGH_RISK))["households"].sum()),
        "mean_p": float(cube["p_sum"].sum()) / scored if scored else None,
        "not_scored": int(cube.filter(pl.col("risk_band") == NOT_SCORED)["households"].sum()),
    }


def breakdown(cube: pl.DataFrame, *by: str) -> pl.DataFrame:
    """Households, vulnerable and share vulnerable per group (groups with households only), largest first."""
    return (
        cube.group_by(*by)
        .agg(
            pl.col("households").sum(),
            pl.col("vulnerable").sum(),
            pl.col("households").filter(pl.col("risk_band").is_in(HIGH_RISK)).sum().alias("high_or_critical"),
        )
        .filter(pl.col("households") > 0)
        .with_columns((pl.col("vulnerable") / pl.col("households")).alias("share_vulnerable"))
        .sort("households", descending=True)
    )


def per_round(cube: pl.DataFrame, order: Sequence[str], *by: str) -> pl.DataFrame:
    """Households (each once per round), vulnerable, share vulnerable and visits per round, in `order`."""
    position = {r: i for i, r in enumerate(order)}
    return (
        cube.group_by("survey_round", *by)
        .agg(
            pl.col("round_households").sum().alias("households"),
            pl.col("round_vulnerable").sum().alias("vulnerable"),
            pl.col("visits").sum(),
        )
        .filter(pl.col("households") > 0)
        .with_columns(
            (pl.col("vulnerable") / pl.col("households")).alias("share_vulnerable"),
            pl.col("survey_round")
            .replace_strict(position, default=len(position), return_dtype=pl.Int64)
            .alias("_order"),
        )
        .sort("_order", *by)
        .drop("_order")
    )
