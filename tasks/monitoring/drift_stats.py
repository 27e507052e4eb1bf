"""Drift statistics: a batch against a reference profile, per monitored feature, with calibrated thresholds.

Numbers: Kolmogorov–Smirnov and PSI over reference-decile bins. Categories: chi-square (2×K homogeneity)
and Jensen–Shannon divergence. Every test has a p-value; Holm's step-down corrects them across all features
and metrics, so the whole batch has one family-wise error rate. PSI and JS p-values come from their
second-order null, PSI ≈ 8·JS ≈ (1/n + 1/m)·χ²(k−1), so their flag threshold grows as the batch shrinks.
A feature flags only when a test is significant *and* its PSI reaches a practical floor: a million-row
batch makes trivial differences significant, a 50-row batch makes large PSIs by chance.

The outcome and the money columns it is summed from (`contract.PROGRAMME_OUTCOME_COLUMNS`) are what the
programme exists to move: the same rule marks them `changed` and reports them as programme change, never as
drift. Only the other (input) features flag drift and decide the score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import polars as pl

from tasks.ingest import contract
from tasks.monitoring.drift_metrics import (
    FeatureDrift,
    Kind,
    PValue,
    Test,
    categorical,
    holm,
    numeric,
    p_values,
)


@dataclass(frozen=True)
class Calibration:
    """The drift thresholds, in one place. Derived with `bench/drift_calibration.py` (figures in bench/README.md).

    alpha 0.01: family-wise error over all features and metrics (Holm). Resampling the real file, 0/100
    batches flag at every size from 50 to 2,000 rows (0.05 flags 1-3/100 at 50-200 rows), while household
    size +30%, a missing district, halved incomes and a new district flag 100/100 from 100 rows (87/100 at 50).
    min_psi 0.1: the conventional "moderate shift" floor. At 500 rows the null's 99th percentile is ~0.04, so
    the floor, not chance, decides; at a million rows it keeps trivially small differences (all significant
    there) from flagging. The price: a 10% income shift (PSI ~0.03) is not drift here.
    bins 10: reference deciles (ties merged), the usual PSI binning; equal-width bins on skewed money columns
    put nearly everything in one bin.
    smoothing 0.5: a Jeffreys pseudo-count per bin or category instead of ε = 1e-6, so an empty bin in a small
    sample adds a bounded, not a huge, term.
    min_rows 50: below this no feature is tested (the source document used the same floor).
    """

    alpha: float = 0.01
    min_psi: float = 0.1
    bins: int = 10
    smoothing: float = 0.5
    min_rows: int = 50


CALIBRATION = Calibration()


def _kinds() -> tuple[tuple[str, ...], tuple[str, ...]]:
    numeric = tuple(n for n in contract.MONITORED_COLUMNS if contract.column(n).dtype in ("int", "float"))
    categorical = tuple(n for n in contract.MONITORED_COLUMNS if n not in numeric)
    return numeric, categorical


NUMERIC_FEATURES, CATEGORICAL_FEATURES = _kinds()
PROGRAMME_FEATURES = tuple(n for n in contract.MONITORED_COLUMNS if n in contract.PROGRAMME_OUTCOME_COLUMNS)


def kind_of(name: str) -> Kind:
    """`programme` for the outcome and its money columns, `input` for every other monitored feature."""
    return "programme" if name in PROGRAMME_FEATURES else "input"


@dataclass(frozen=True)
class Reference:
    """What a batch is compared with: sorted values and decile bins per number, counts per category."""

    sorted_values: dict[str, np.ndarray]
    edges: dict[str, np.ndarray]
    bin_counts: dict[str, np.ndarray]
    categories: dict[str, dict[str, int]]
    rows: int
    version: str | None = None


def _numbers(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Sorted non-null values of every numeric monitored column (one conversion for all of them)."""
    present = [n for n in NUMERIC_FEATURES if n in frame.columns]
    if not present:
        return {n: np.empty(0) for n in NUMERIC_FEATURES}
    matrix = frame.select(pl.col(n).cast(pl.Float64, strict=False) for n in present).to_numpy()
    columns = {n: np.sort(matrix[:, i][~np.isnan(matrix[:, i])]) for i, n in enumerate(present)}
    return {n: columns.get(n, np.empty(0)) for n in NUMERIC_FEATURES}


def _categories(frame: pl.DataFrame, name: str) -> dict[str, int]:
    if name not in frame.columns:
        return {}
    counts = frame[name].drop_nulls().cast(pl.String).value_counts()
    return dict(zip(counts[name].to_list(), counts["count"].to_list(), strict=True))


def reference_profile(
    frame: pl.DataFrame, version: str | None = None, calibration: Calibration = CALIBRATION
) -> Reference:
    """Profile the monitored columns of a training frame (nulls left out per feature)."""
    sorted_values, edges, counts = {}, {}, {}
    for name, values in _numbers(frame).items():
        if values.size == 0:
            continue
        cuts = np.unique(np.quantile(values, np.linspace(0, 1, calibration.bins + 1)[1:-1]))
        sorted_values[name], edges[name] = values, cuts
        counts[name] = np.bincount(np.searchsorted(cuts, values, side="left"), minlength=cuts.size + 1)
    return Reference(
        sorted_values,
        edges,
        counts,
        {n: _categories(frame, n) for n in CATEGORICAL_FEATURES},
        frame.height,
        version,
    )


class DriftSummary(TypedDict):
    """The figures every drift result carries, measured now (`DriftReport`) or read back from the catalog."""

    drift: bool  # an input feature flagged
    score: float  # the largest PSI of the input features
    rows: int
    reference_version: str | None
    features: dict[str, FeatureDrift]
    programme_change: dict[str, float]  # PSI of each programme column that changed; {} when none did


class DriftReport(DriftSummary):
    """A drift result as measured (`DriftResult.as_dict`), as the catalog stores it."""

    status: str
    reference_rows: int


@dataclass
class DriftResult:
    """Drift of one batch: the decision, the overall score (largest PSI) and per-feature figures."""

    drift: bool
    score: float
    rows: int
    reference_rows: int
    reference_version: str | None
    features: dict[str, FeatureDrift] = field(default_factory=dict)
    status: str = "ok"  # "ok" or "insufficient" (too few rows to test anything)

    @property
    def programme_change(self) -> dict[str, float]:
        """PSI of each programme column (outcome, income) that changed: reported, never a retrain trigger."""
        return {n: row["psi"] for n, row in self.features.items() if row.get("changed")}

    def as_dict(self) -> DriftReport:
        """The JSON shape `rtv drift --json` prints and the catalog stores."""
        return {
            "drift": self.drift,
            "score": self.score,
            "status": self.status,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "reference_version": self.reference_version,
            "features": self.features,
            "programme_change": self.programme_change,
        }


def detect(ref: Reference, frame: pl.DataFrame, cal: Calibration = CALIBRATION) -> DriftResult:
    """Compare a batch's monitored columns with the reference; flags need Holm significance and PSI ≥ the floor.

    Programme columns meeting the same rule are marked `changed`, not flagged: they never make `drift`.
    """
    features: dict[str, FeatureDrift] = {}
    for name, values in _numbers(frame).items():
        if name not in ref.sorted_values or values.size < cal.min_rows:
            features[name] = {"skipped": f"{values.size} values (need {cal.min_rows})", "flag": False}
        else:
            features[name] = numeric(
                ref.sorted_values[name], ref.edges[name], ref.bin_counts[name], values, cal.smoothing
            )
    for name in CATEGORICAL_FEATURES:
        counts = _categories(frame, name)
        if not ref.categories.get(name) or sum(counts.values()) < cal.min_rows:
            features[name] = {
                "skipped": f"{sum(counts.values())} values (need {cal.min_rows})",
                "flag": False,
            }
        else:
            features[name] = categorical(ref.categories[name], counts, cal.smoothing)
    tested: list[tuple[str, PValue, Test]] = [
        (f, metric, test) for f, row in features.items() for metric, test in row.get("_tests", {}).items()
    ]
    for (f, metric, _), adjusted in zip(tested, holm(p_values([t for *_, t in tested])), strict=True):
        features[f][metric] = float(f"{adjusted:.3g}")
    for name, row in features.items():
        moved = False
        if "_tests" in row:
            significant = any(row[metric] < cal.alpha for metric in row.pop("_tests"))
            moved = significant and row["psi"] >= cal.min_psi
        row["kind"] = kind_of(name)
        row["flag"] = moved and row["kind"] == "input"
        if row["kind"] == "programme":
            row["changed"] = moved
    scores = [row["psi"] for row in features.values() if "psi" in row and row["kind"] == "input"]
    return DriftResult(
        drift=any(row["flag"] for row in features.values()),
        score=max(scores, default=0.0),
        rows=frame.height,
        reference_rows=ref.rows,
        reference_version=ref.version,
        features=features,
        status="ok" if tested else "insufficient",
    )
