"""Score households with a model: probability of vulnerability, predicted status, risk band."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import polars as pl

from tasks.model.estimator import VulnerabilityModel, design_matrix

if TYPE_CHECKING:
    from tasks.model.registry import Champion
    from tasks.platform.settings import Settings

RISK_BANDS = ("Low", "Medium", "High", "Critical")
PREDICTION_COLUMNS = (
    "ingestion_id",
    "source_row",
    "household_pseudonym",
    "district",
    "cluster",
    "village",
    "survey_round",
    "p_vulnerable",
    "expected_per_day",
    "predicted_status",
    "risk_band",
    "observed_status",
    "model_name",
    "model_version",
    "scored_at",
)


def risk_band(p_vulnerable: np.ndarray, cutoffs: tuple[float, float, float]) -> np.ndarray:
    """Low / Medium / High / Critical by probability: (0, c1], (c1, c2], (c2, c3], (c3, 1]."""
    return np.select([p_vulnerable <= c for c in cutoffs], RISK_BANDS[:-1], RISK_BANDS[-1])


def score_households(
    model: VulnerabilityModel,
    frame: pl.DataFrame,
    *,
    model_name: str,
    model_version: str,
    cutoffs: tuple[float, float, float],
) -> pl.DataFrame:
    """One prediction row per household of `frame` (accepted rows, with or without the target)."""
    if frame.height == 0:
        return pl.DataFrame(schema={c: pl.String for c in PREDICTION_COLUMNS}).with_columns(
            pl.col("source_row").cast(pl.Int64), pl.col("p_vulnerable", "expected_per_day").cast(pl.Float64)
        )
    p, expected, status = model.estimate(design_matrix(frame))
    observed = (
        frame["progress_status"]
        if "progress_status" in frame.columns
        else pl.repeat(None, frame.height, dtype=pl.String)
    )
    return (
        frame.select(
            pl.col("ingestion_id")
            if "ingestion_id" in frame.columns
            else pl.lit(None, pl.String).alias("ingestion_id"),
            pl.col("source_row") if "source_row" in frame.columns else pl.col("_row").alias("source_row"),
            "household_pseudonym",
            "district",
            "cluster",
            "village",
            # objects written before rounds existed (backfill, review of old rows) have no round
            pl.col("survey_round")
            if "survey_round" in frame.columns
            else pl.lit(None, pl.String).alias("survey_round"),
        )
        .with_columns(
            pl.Series("p_vulnerable", p.round(4)),
            pl.Series("expected_per_day", expected.round(3)),
            pl.Series("predicted_status", status, dtype=pl.String),
            pl.Series("risk_band", risk_band(p, cutoffs), dtype=pl.String),
            observed.alias("observed_status"),
            pl.lit(model_name).alias("model_name"),
            pl.lit(model_version).alias("model_version"),
            pl.lit(datetime.now(UTC).isoformat(timespec="seconds")).alias("scored_at"),
        )
        .select(PREDICTION_COLUMNS)
    )


def score_with(champion: Champion, frame: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Score `frame` with the champion under the model name and risk-band cut-offs of `settings`."""
    return score_households(
        champion.model,
        frame,
        model_name=settings.model_name,
        model_version=champion.version,
        cutoffs=settings.risk_band_cutoffs,
    )


class PredictionSummary(TypedDict, total=False):
    """Households per predicted status and risk band, by one model version (empty when nothing was scored)."""

    model_version: str
    rows_scored: int
    by_status: dict[str, int]
    by_risk_band: dict[str, int]
    mean_p_vulnerable: float


def summarise(predictions: pl.DataFrame) -> PredictionSummary:
    """Households per predicted status and risk band (for the import report and the API)."""
    if predictions.height == 0:
        return {}
    return {
        "model_version": predictions["model_version"][0],
        "rows_scored": predictions.height,
        "by_status": dict(predictions["predicted_status"].value_counts().iter_rows()),
        "by_risk_band": dict(predictions["risk_band"].value_counts().iter_rows()),
        "mean_p_vulnerable": round(float(predictions.select(pl.mean("p_vulnerable")).item()), 4),
    }
