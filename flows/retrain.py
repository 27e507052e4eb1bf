"""Retrain flow: check the triggers, train and evaluate honestly, register, promote only a better model."""

from __future__ import annotations

import math
from typing import Any, TypedDict

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from tasks.ingest import contract
from tasks.model.estimator import VulnerabilityModel, design_matrix, source_features
from tasks.model.evaluation import Evaluation, SnapshotDescription, evaluate, holdout_rows, model_card
from tasks.model.lifecycle import (
    MIN_TRAINING_ROWS,
    TriggerCheck,
    check_triggers,
    labelled_snapshot,
)
from tasks.model.registry import Registered
from tasks.monitoring.drift import reference_frame
from tasks.platform.retry import cpu_task, io_task, with_retry_policy
from tasks.platform.settings import Settings
from tasks.runtime import Runtime, runtime_for
from tasks.workflows.backfill import score_unscored


class _RetrainSummaryBase(TypedDict):
    decision: str
    reason: str
    triggers: list[str]
    new_labelled_rows: int
    accuracy_on_new: float | None
    version: str | None
    alias: str | None
    metrics: dict[str, float | None]
    holdout_metrics: dict[str, float | None]
    n_train: int
    n_holdout: int
    features: list[str]


class RetrainSummary(_RetrainSummaryBase, total=False):
    """What one retrain run decided (printed by `rtv retrain --json`, kept as the flow's result)."""

    compared: dict[str, Any] | None
    by_district: dict[str, Any]
    backfilled: dict[str, int]


@io_task
def check(rt: Runtime, force: bool, drift: bool) -> TriggerCheck:
    """Which triggers fire now."""
    return check_triggers(rt, rt.champion(), force=force, drift=drift)


@io_task
def snapshot(rt: Runtime) -> tuple[pl.DataFrame, SnapshotDescription]:
    """Every labelled accepted row, and what that snapshot is."""
    return labelled_snapshot(rt)


@cpu_task
def train(frame: pl.DataFrame) -> tuple[VulnerabilityModel, Evaluation]:
    """Village-grouped CV, the final fit on the training villages, held-out scores, feature importance."""
    model, evaluation = evaluate(frame)
    held = frame.filter(holdout_rows(frame))  # by first village: a household that moved stays on one side
    if held.height:
        evaluation.feature_importance = model.feature_importance(
            design_matrix(held), held[contract.TARGET].to_numpy()
        )
    return model, evaluation


@io_task
def register(
    rt: Runtime,
    model: VulnerabilityModel,
    evaluation: Evaluation,
    frame: pl.DataFrame,
    described: SnapshotDescription,
) -> Registered:
    """Log the version with its card and snapshot; champion only if it beats the champion on held-out villages."""
    card = model_card(evaluation, described)
    version = rt.registry.log(
        model, evaluation, described, card, model.get_params(), reference=reference_frame(frame)
    )
    return rt.registry.decide(version, evaluation, frame, rt.settings.promotion_margin)


@io_task
def backfill(rt: Runtime) -> dict[str, int]:
    """Score processed households that have no predictions yet with the (new) champion."""
    champion = rt.champion()
    return score_unscored(rt, champion) if champion is not None else {"objects": 0, "rows": 0}


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


def _markdown(summary: RetrainSummary) -> str:
    lines = [f"# Retrain decision: **{summary['decision']}**", "", summary["reason"], ""]
    if summary.get("version"):
        lines += [
            f"Version **{summary['version']}** is now **{summary['alias']}**.",
            "",
            "| metric | village-grouped CV | held-out villages |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {k} | {v} | {summary['holdout_metrics'].get(k)} |" for k, v in summary["metrics"].items()
        ]
        lines += ["", f"Training rows {summary['n_train']:,}; held-out rows {summary['n_holdout']:,}."]
    return "\n".join(lines)


def run_retrain(rt: Runtime, *, force: bool = False, drift: bool = False) -> RetrainSummary:
    """The retrain steps, in order; returns the decision summary."""
    logger = get_run_logger()
    # 1. Triggers
    triggers = with_retry_policy(check, rt.settings)(rt, force, drift)
    summary: RetrainSummary = {
        "decision": "skip",
        "reason": "; ".join(triggers.reasons) or "no trigger fired",
        "triggers": triggers.fired,
        "new_labelled_rows": triggers.new_labelled_rows,
        "accuracy_on_new": triggers.accuracy_on_new,
        "version": None,
        "alias": None,
        "metrics": {},
        "holdout_metrics": {},
        "n_train": 0,
        "n_holdout": 0,
        "features": source_features(),
    }
    if triggers.should_retrain:
        # 2. The labelled snapshot
        frame, described = with_retry_policy(snapshot, rt.settings)(rt)
        if frame.height < MIN_TRAINING_ROWS:
            summary["reason"] = (
                f"{summary['reason']}; but only {frame.height} labelled rows (need {MIN_TRAINING_ROWS})"
            )
        else:
            # 3. Train and evaluate; 4. register and decide
            model, evaluation = train(frame)
            registered = with_retry_policy(register, rt.settings)(rt, model, evaluation, frame, described)
            summary |= {
                "decision": "retrain",
                "reason": f"{summary['reason']}. {registered.reason}",
                "version": registered.version,
                "alias": registered.alias,
                "compared": registered.compared,
                "metrics": _finite(evaluation.cv),
                "holdout_metrics": _finite(evaluation.holdout),
                "by_district": evaluation.by_district,
                "n_train": evaluation.n_train,
                "n_holdout": evaluation.n_holdout,
            }
            if registered.alias == "champion":
                # 5. Households imported while no model was serving get scored by the new champion
                summary["backfilled"] = with_retry_policy(backfill, rt.settings)(rt)
    # 6. Record the decision
    rt.catalog.record_decision(
        triggers={"fired": triggers.fired},
        decision=summary["decision"],
        reason=summary["reason"],
        new_labelled_rows=triggers.new_labelled_rows,
        accuracy_on_new=triggers.accuracy_on_new,
        model_name=rt.settings.model_name,
        model_version=summary["version"],
        alias=summary["alias"],
        metrics=summary["metrics"] or None,
        flow_run_id=str(flow_run.get_id() or "") or None,
    )
    create_markdown_artifact(_markdown(summary), key="retrain-decision", description="Retrain decision")
    logger.info("retrain decision: %s (%s)", summary["decision"], summary["reason"])
    return summary


@flow(name="retrain", log_prints=False)
def retrain(force: bool = False, drift: bool = False) -> RetrainSummary:
    """Retrain when a trigger fires (or `force`); promote the new version only if it is better."""
    return run_retrain(runtime_for(Settings()), force=force, drift=drift)
