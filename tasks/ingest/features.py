"""Transform (polars): ProgressStatus, is_vulnerable and engineered features, the same columns every batch."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tasks.ingest import contract
from tasks.ingest.contract import TARGET, UGX_PER_USD

HYGIENE = (
    "latrine_constructed",
    "tippy_tap_available",
    "soap_ash_available",
    "standard_hangline",
    "kitchen_house",
    "bathroom_constructed",
    "swept_compound",
    "dish_rack_present",
    "non_bio_waste_managed",
)
INCOME_SOURCES = (
    "formal_employment_income",
    "business_income",
    "casual_labour_income",
    "remittances_income",
    "rent_income",
    "seasonal_crop_income",
    "perennial_crop_income",
    "livestock_income",
)


@dataclass(frozen=True)
class Feature:
    """An engineered column and the contract columns it is computed from (for the leakage check)."""

    name: str
    expr: pl.Expr
    inputs: tuple[str, ...]
    label: str
    dtype: pl.DataType = pl.Float64()


def _per_person(column: str, scale: float = 1.0) -> pl.Expr:
    return pl.col(column) * scale / pl.col("household_size").cast(pl.Float64)


def _code_count(column: str) -> pl.Expr:
    return pl.col(column).str.split(" ").list.len().fill_null(0).cast(pl.Float64)


FEATURES: tuple[Feature, ...] = (
    Feature(
        "land_per_person",
        _per_person("agriculture_land"),
        ("agriculture_land", "household_size"),
        "Farm land per person (acres)",
    ),
    Feature(
        "livestock_per_person",
        _per_person("livestock_asset_value"),
        ("livestock_asset_value", "household_size"),
        "Livestock held per person (USD)",
    ),
    Feature(
        "vsla_profit_per_person",
        _per_person("vsla_profits_ugx", 1 / UGX_PER_USD),
        ("vsla_profits_ugx", "household_size"),
        "Savings-group profit per person (USD)",
    ),
    Feature(
        "crop_types_total",
        (
            pl.col("season1_crops_planted")
            + pl.col("season2_crops_planted")
            + pl.col("perennial_crops_grown")
        ).cast(pl.Float64),
        ("season1_crops_planted", "season2_crops_planted", "perennial_crops_grown"),
        "Crop types grown in all",
    ),
    Feature(
        "hygiene_score",
        pl.mean_horizontal([pl.col(c).cast(pl.Float64) for c in HYGIENE]),
        HYGIENE,
        "Hygiene and sanitation score (0–1)",
    ),
    Feature(
        "farming_practice_score",
        pl.mean_horizontal(
            [
                pl.col("composts"),
                pl.col("applies_liquid_manure").cast(pl.Float64),
                pl.col("soil_management").cast(pl.Float64),
                pl.col("postharvest_storage").cast(pl.Float64),
                (pl.col("fertilizer_type") != 99).cast(pl.Float64),
                (pl.col("organic_pesticide_ugx").fill_null(0) > 0).cast(pl.Float64),
            ]
        ),
        (
            "composts",
            "applies_liquid_manure",
            "soil_management",
            "postharvest_storage",
            "fertilizer_type",
            "organic_pesticide_ugx",
        ),
        "Farming practice score (0–1)",
    ),
    Feature(
        "asset_count",
        (pl.col("radios_owned") + pl.col("phones_owned")).cast(pl.Float64),
        ("radios_owned", "phones_owned"),
        "Radios and phones owned",
    ),
    Feature("loan_source_count", _code_count("loan_sources"), ("loan_sources",), "Loan sources named"),
    Feature(
        "banana_wilt_count",
        _code_count("banana_wilt_codes"),
        ("banana_wilt_codes",),
        "Banana wilt diseases named",
    ),
    Feature(
        "dependency_load",
        (pl.col("household_size") / (1 + pl.col("work_salaried") + pl.col("work_casual"))).cast(pl.Float64),
        ("household_size", "work_salaried", "work_casual"),
        "People per working line",
    ),
    # The two below read the income module: useful for reporting, never for the model.
    Feature(
        "income_per_person_per_day",
        _per_person(TARGET),
        (TARGET, "household_size"),
        "Income and consumption per person per day (USD)",
    ),
    Feature(
        "livelihood_diversity",
        pl.sum_horizontal([(pl.col(c) > 0).cast(pl.Float64) for c in INCOME_SOURCES]),
        INCOME_SOURCES,
        "Income sources with earnings",
    ),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
LABELS = {f.name: f.label for f in FEATURES} | {
    "progress_status": "Progress status",
    "is_vulnerable": "Vulnerable",
}


def model_safe_features() -> tuple[str, ...]:
    """Engineered features whose inputs are all contract model inputs (none touches the target's closure)."""
    allowed = set(contract.model_input_columns())
    return tuple(f.name for f in FEATURES if set(f.inputs) <= allowed)


def add_status(frame: pl.DataFrame) -> pl.DataFrame:
    """ProgressStatus by the >= thresholds and is_vulnerable (Struggling or Severely Struggling)."""
    status = contract.progress_status_expr(pl.col(TARGET))
    return frame.with_columns(status.alias("progress_status")).with_columns(
        pl.col("progress_status").is_in(list(contract.VULNERABLE_STATUSES)).alias("is_vulnerable")
    )


def add_features(frame: pl.DataFrame) -> pl.DataFrame:
    """Status plus every engineered feature; infinities from zero denominators become null."""
    with_status = add_status(frame)
    return with_status.with_columns(
        [
            pl.when(f.expr.is_finite()).then(f.expr).otherwise(None).cast(f.dtype).alias(f.name)
            for f in FEATURES
        ]
    )
