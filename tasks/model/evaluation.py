"""Honest evaluation: village-grouped cross-validation, a fixed held-out set of villages, a model card.

Groups and the held-out split follow the village a household was first seen in (`first_district`,
`first_cluster`, `first_village`, from the registry), so every visit of a household that moved stays on one
side of every split; frames without those columns fall back to each row's own place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import polars as pl
from sklearn.metrics import accuracy_score, average_precision_score, brier_score_loss, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from tasks.ingest import contract
from tasks.model.estimator import VULNERABLE_BELOW, VulnerabilityModel, design_matrix, source_features


class SnapshotDescription(TypedDict):
    """What a model was trained on: the ingestions, the labelled rows and when; kept with each version."""

    ingestions: list[str]
    rows: int
    taken_at: str  # ISO 8601, seconds, UTC


HOLDOUT_SHARE = 5  # one village in five, chosen by a hash of its name: the same villages at every retrain
METRICS = ("roc_auc", "pr_auc", "accuracy", "macro_f1_4class", "brier")


def is_holdout(villages: pl.Series) -> pl.Series:
    """Villages held out from training for good, so every model version is compared on unseen villages."""

    def bucket(name: str | None) -> bool:
        return (
            name is not None
            and hashlib.sha256(name.strip().lower().encode()).digest()[0] % HOLDOUT_SHARE == 0
        )

    return pl.Series("holdout", [bucket(v) for v in villages.to_list()], dtype=pl.Boolean)


FIRST_PLACE = ("first_district", "first_cluster", "first_village")  # where the registry first saw a household


def first_place(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A row's household's first-seen `district`, `cluster` or `village`, else the row's own (no registry)."""
    own = pl.col(column).cast(pl.String) if column in frame.columns else pl.lit(None, pl.String)
    first = f"first_{column}"
    return (pl.coalesce(pl.col(first).cast(pl.String), own) if first in frame.columns else own).alias(column)


def holdout_rows(frame: pl.DataFrame) -> pl.Series:
    """Rows whose household's first village is held out: all visits of a household fall on the same side."""
    return is_holdout(frame.select(first_place(frame, "village"))["village"])


def village_groups(frame: pl.DataFrame) -> np.ndarray:
    """CV group of each row: its household's first (village, district, cluster).

    The village name leads the key so that, where names are unique, groups sort (and StratifiedGroupKFold
    shuffles them) exactly as the name-only groups did: metrics of single-visit data stay comparable.
    """
    parts = [first_place(frame, c).fill_null("") for c in ("village", "district", "cluster")]
    return frame.select(pl.concat_str(parts, separator="\x1f").alias("group"))["group"].to_numpy()


def _labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with a target and a (first) village: the only rows that can be scored and grouped."""
    return frame.filter(pl.col(contract.TARGET).is_not_null() & first_place(frame, "village").is_not_null())


def cv_splits(
    train: pl.DataFrame, statuses: object, folds: int = 5, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(fit, validate) row indices of the village-grouped, status-stratified folds of `train`."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    yield from splitter.split(np.zeros((train.height, 1)), statuses, village_groups(train))


def score(target: np.ndarray, p_vulnerable: np.ndarray, status: np.ndarray) -> dict[str, float]:
    """The five headline metrics from observed targets and predictions."""
    truth = (target < VULNERABLE_BELOW).astype(int)
    observed = contract.progress_status_labels(target)
    both = len(set(truth)) == 2
    return {
        "roc_auc": round(float(roc_auc_score(truth, p_vulnerable)), 4) if both else float("nan"),
        "pr_auc": round(float(average_precision_score(truth, p_vulnerable)), 4) if both else float("nan"),
        "accuracy": round(float(accuracy_score(truth, p_vulnerable >= 0.5)), 4),
        "macro_f1_4class": round(
            float(
                f1_score(
                    observed,
                    status,
                    labels=list(contract.PROGRESS_STATUSES),
                    average="macro",
                    zero_division=0,
                )
            ),
            4,
        ),
        "brier": round(float(brier_score_loss(truth, p_vulnerable)), 4),
    }


def calibration_table(target: np.ndarray, p_vulnerable: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Predicted vs observed share vulnerable in probability deciles."""
    truth = (target < VULNERABLE_BELOW).astype(int)
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (p_vulnerable >= low) & ((p_vulnerable < high) if high < 1 else (p_vulnerable <= high))
        if inside.any():
            rows.append(
                {
                    "from": round(float(low), 2),
                    "to": round(float(high), 2),
                    "households": int(inside.sum()),
                    "predicted": round(float(p_vulnerable[inside].mean()), 3),
                    "observed": round(float(truth[inside].mean()), 3),
                }
            )
    return rows


@dataclass
class Evaluation:
    """Cross-validated and held-out performance of one model configuration on one data snapshot."""

    cv: dict[str, float]
    holdout: dict[str, float]
    by_district: dict[str, dict[str, float]]
    calibration: list[dict[str, float]]
    n_train: int
    n_holdout: int
    feature_importance: dict[str, float] = field(default_factory=dict)


def _predict(model: VulnerabilityModel, X: Any) -> tuple[np.ndarray, np.ndarray]:
    p_vulnerable, _, status = model.estimate(X)
    return p_vulnerable, status


def evaluate(
    frame: pl.DataFrame, params: dict[str, Any] | None = None, folds: int = 5, seed: int = 0
) -> tuple[VulnerabilityModel, Evaluation]:
    """Village-grouped CV on the training villages, then the final model fitted on them and scored on the holdout."""
    labelled = _labelled(frame)
    held = holdout_rows(labelled)
    train, test = labelled.filter(~held), labelled.filter(held)
    X, y = design_matrix(train), train[contract.TARGET].to_numpy()
    statuses = contract.progress_status_labels(y)
    p_oof, s_oof = np.zeros(len(y)), np.empty(len(y), dtype=object)
    for fit_idx, val_idx in cv_splits(train, statuses, folds, seed):
        fold_model = VulnerabilityModel(**(params or {})).fit(X.iloc[fit_idx], y[fit_idx])
        p_oof[val_idx], s_oof[val_idx] = _predict(fold_model, X.iloc[val_idx])
    model = VulnerabilityModel(**(params or {})).fit(X, y)
    by_district = {}
    districts = train["district"].to_numpy()
    for district in sorted(set(districts)):
        inside = districts == district
        by_district[district] = score(y[inside], p_oof[inside], s_oof[inside]) | {
            "households": int(inside.sum())
        }
    holdout = {}
    if test.height:
        y_test = test[contract.TARGET].to_numpy()
        holdout = score(y_test, *_predict(model, design_matrix(test)))
    return model, Evaluation(
        cv=score(y, p_oof, s_oof),
        holdout=holdout,
        by_district=by_district,
        calibration=calibration_table(y, p_oof),
        n_train=len(y),
        n_holdout=test.height,
    )


def holdout_score(model: VulnerabilityModel, frame: pl.DataFrame) -> dict[str, float]:
    """A model's metrics on the held-out villages of a snapshot (how champion and challenger are compared)."""
    labelled = _labelled(frame)
    test = labelled.filter(holdout_rows(labelled))
    if test.height == 0:
        return {}
    return score(test[contract.TARGET].to_numpy(), *_predict(model, design_matrix(test)))


def model_card(evaluation: Evaluation, snapshot: SnapshotDescription, version: str | None = None) -> str:
    """Markdown model card stored with the run: features, data, metrics, intended use, known limits."""

    def table(metrics: dict[str, float]) -> str:
        return " | ".join(f"{k} {v}" for k, v in metrics.items())

    lines = [
        f"# Household vulnerability model{f' v{version}' if version else ''}",
        "",
        "## Intended use",
        "Triage: estimate which households are likely below 1.77 USD/day (Struggling or Severely Struggling) from",
        "what is cheap to observe, before or without the full income module. Not a substitute for the survey.",
        "",
        "## Features (source headers)",
        ", ".join(source_features()),
        "",
        "Never the target, a term of its sum, or anything derived from those (totals, /Day columns, crop,",
        "vegetable, agricultural and livestock incomes and values, livestock consumed): the contract proves it.",
        "",
        "## Data snapshot",
        f"{snapshot.get('rows', 0):,} labelled households from {len(snapshot.get('ingestions', []))} ingestions; "
        f"{evaluation.n_train:,} in training villages, {evaluation.n_holdout:,} in held-out villages.",
        "",
        "## Metrics",
        f"- village-grouped 5-fold CV: {table(evaluation.cv)}",
        f"- held-out villages: {table(evaluation.holdout)}",
        "",
        "| district | households | ROC AUC | macro-F1 (4) | accuracy |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {d} | {m['households']:,} | {m['roc_auc']} | {m['macro_f1_4class']} | {m['accuracy']} |"
            for d, m in evaluation.by_district.items()
        ],
        "",
        "Calibration (CV): "
        + "; ".join(
            f"{c['from']:.1f}–{c['to']:.1f}: predicted {c['predicted']}, "
            f"observed {c['observed']} (n={c['households']})"
            for c in evaluation.calibration
        ),
        "",
        "## Known limits",
        "- ROC AUC ~0.79 means many households are misranked: use it to prioritise visits, not to decide aid.",
        "- Trained on four districts of south-western Uganda; other districts get no district effect.",
        "- The per-day figures are per household, not per person (the brief applies the cut-offs so).",
        "- Code labels for wall material, fertiliser, loan sources and banana wilt are unknown; the model uses codes.",
    ]
    return "\n".join(lines)
