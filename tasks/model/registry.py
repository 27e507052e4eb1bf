"""Model registry on MLflow: versions, the champion / challenger / previous aliases, promotion and rollback.

MLflow is imported lazily (4-5 s): an ingest without a champion never pays for it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from tasks.model.estimator import VulnerabilityModel
from tasks.model.evaluation import METRICS, Evaluation, SnapshotDescription, holdout_score

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
REFERENCE_ARTIFACT = "drift_reference.parquet"
PROMOTION_METRIC = "roc_auc"

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Registered:
    """Outcome of registering a new version."""

    version: str
    alias: str
    reason: str
    compared: dict[str, float]


@dataclass(frozen=True)
class Champion:
    """The model currently serving predictions."""

    version: str
    model: VulnerabilityModel
    snapshot: SnapshotDescription
    created_at: float  # epoch seconds


class VersionRow(TypedDict):
    """One registered version as `Registry.versions` lists it (`rtv model list --json`, the dashboard)."""

    version: str
    aliases: list[str]
    created: int  # epoch milliseconds
    run_id: str
    metrics: dict[str, float | None]  # village-grouped CV, by metric name
    holdout: dict[str, float | None]  # held-out villages, by metric name


def _requirements() -> list[str]:
    """Explicit pins: letting MLflow infer them runs a subprocess that costs ~10 s per log."""
    import numpy
    import pandas
    import polars
    import scipy
    import sklearn

    return [
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={numpy.__version__}",
        f"scipy=={scipy.__version__}",
        f"pandas=={pandas.__version__}",
        f"polars=={polars.__version__}",
    ]


class Registry:
    """One registered model in one MLflow tracking store."""

    def __init__(self, tracking_uri: str, model_name: str, artifact_root: Path) -> None:
        os.environ.setdefault(
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
        )  # progress bars in logs and JSON
        import mlflow
        from mlflow import MlflowClient

        # We save with cloudpickle on purpose (see `log`): its warning on every log is noise.
        logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)

        self.tracking_uri, self.name, self.artifact_root = tracking_uri, model_name, artifact_root
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        experiment = self.client.get_experiment_by_name(model_name)
        self.experiment_id = (
            experiment.experiment_id
            if experiment
            else self.client.create_experiment(model_name, artifact_location=artifact_root.resolve().as_uri())
        )

    # ---- reading ------------------------------------------------------------------------------------------

    def version_with(self, alias: str) -> Any | None:
        """The model version carrying an alias, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException:
            return None

    def alias_version(self, alias: str) -> str | None:
        """The version number carrying an alias, as text, or None."""
        version = self.version_with(alias)
        return None if version is None else str(version.version)

    def load(self, version: str) -> VulnerabilityModel:
        """The fitted model of a version."""
        import mlflow.sklearn

        return cast(VulnerabilityModel, mlflow.sklearn.load_model(f"models:/{self.name}/{version}"))

    def snapshot(self, version: Any) -> SnapshotDescription:
        """The data snapshot a version was trained on."""
        import mlflow.artifacts

        found = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/snapshot.json")
        return cast("SnapshotDescription", found)

    def reference(self, version: Any) -> pl.DataFrame | None:
        """The monitored columns of a version's training snapshot (its drift reference); None for older versions."""
        import mlflow.artifacts
        import polars as pl
        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=version.run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp
                )
            except (MlflowException, OSError):
                return None
            return pl.read_parquet(path)

    def champion(self) -> Champion | None:
        """The champion with its model and snapshot, or None when no version has been promoted."""
        version = self.version_with(CHAMPION)
        if version is None:
            return None
        return Champion(
            str(version.version),
            self.load(str(version.version)),
            self.snapshot(version),
            version.creation_timestamp / 1000,
        )

    def versions(self) -> list[VersionRow]:
        """Every version with its aliases and headline metrics, newest first."""
        rows: list[VersionRow] = []
        for found in self.client.search_model_versions(f"name = '{self.name}'"):
            v = self.client.get_model_version(self.name, found.version)  # search results leave aliases out
            if v.run_id is None:  # only a version registered outside `log`; get_run(None) fails less clearly
                raise LookupError(f"model version {v.version} of {self.name} has no run")
            run = self.client.get_run(v.run_id)
            rows.append(
                {
                    "version": str(v.version),
                    "aliases": sorted(v.aliases),
                    "created": v.creation_timestamp,
                    "run_id": v.run_id,
                    "metrics": {k: run.data.metrics.get(f"cv_{k}") for k in METRICS},
                    "holdout": {k: run.data.metrics.get(f"holdout_{k}") for k in METRICS},
                }
            )
        return sorted(rows, key=lambda r: int(r["version"]), reverse=True)

    # ---- writing ------------------------------------------------------------------------------------------

    def log(
        self,
        model: VulnerabilityModel,
        evaluation: Evaluation,
        snapshot: SnapshotDescription,
        card: str,
        params: dict[str, Any],
        reference: pl.DataFrame | None = None,
    ) -> str:
        """Log a trained model with its metrics, model card, snapshot and drift reference as a new version."""
        import mlflow
        import mlflow.sklearn

        with mlflow.start_run(experiment_id=self.experiment_id):
            mlflow.log_params(params)
            mlflow.log_metrics(
                {f"cv_{k}": v for k, v in evaluation.cv.items()}
                | {f"holdout_{k}": v for k, v in evaluation.holdout.items()}
                | {"n_train": evaluation.n_train, "n_holdout": evaluation.n_holdout}
            )
            for district, metrics in evaluation.by_district.items():
                mlflow.log_metrics(
                    {f"{district.lower()}_{k}": v for k, v in metrics.items() if k != "households"}
                )
            mlflow.set_tags(
                {
                    "rtv.snapshot_rows": snapshot.get("rows", 0),
                    "rtv.snapshot_ingestions": len(snapshot.get("ingestions", [])),
                }
            )
            mlflow.log_text(card, "model_card.md")
            mlflow.log_dict(dict(snapshot), "snapshot.json")  # takes dict[str, Any], which a TypedDict is not
            if (
                reference is not None
            ):  # the monitored columns it was trained on: what drift is measured against
                with tempfile.TemporaryDirectory() as tmp:
                    reference.write_parquet(Path(tmp) / REFERENCE_ARTIFACT)
                    mlflow.log_artifact(str(Path(tmp) / REFERENCE_ARTIFACT))
            mlflow.log_dict(
                {
                    "cv": evaluation.cv,
                    "holdout": evaluation.holdout,
                    "by_district": evaluation.by_district,
                    "calibration": evaluation.calibration,
                    "feature_importance": evaluation.feature_importance,
                },
                "evaluation.json",
            )
            # cloudpickle, not MLflow 3's default skops: skops refuses HistGradientBoosting's tree nodes and our
            # own class unless each type is whitelisted; these artifacts are written and read only by us.
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=self.name,
                pip_requirements=_requirements(),
                serialization_format="cloudpickle",
            )
        return str(info.registered_model_version)

    def decide(self, version: str, evaluation: Evaluation, frame: Any, margin: float) -> Registered:
        """Make the new version champion if it beats the champion on the same held-out villages by `margin`."""
        current = self.version_with(CHAMPION)
        new_score = evaluation.holdout.get(PROMOTION_METRIC, float("nan"))
        if current is None:
            self._promote(version, None)
            return Registered(version, CHAMPION, "first version: no champion to beat", {"new": new_score})
        champion_score = holdout_score(self.load(str(current.version)), frame).get(
            PROMOTION_METRIC, float("nan")
        )
        compared = {"new": new_score, "champion": champion_score}
        if new_score >= champion_score + margin:
            self._promote(version, str(current.version))
            return Registered(
                version,
                CHAMPION,
                f"held-out {PROMOTION_METRIC} {new_score:.4f} beats champion "
                f"v{current.version} ({champion_score:.4f}) by at least {margin}",
                compared,
            )
        self.client.set_registered_model_alias(self.name, CHALLENGER, version)
        return Registered(
            version,
            CHALLENGER,
            f"held-out {PROMOTION_METRIC} {new_score:.4f} does not beat champion "
            f"v{current.version} ({champion_score:.4f}) by {margin}; kept as challenger",
            compared,
        )

    def _promote(self, version: str, replaced: str | None) -> None:
        if replaced is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, replaced)
        self.client.set_registered_model_alias(self.name, CHAMPION, version)
        challenger = self.version_with(CHALLENGER)
        if challenger is not None and str(challenger.version) == version:
            self.client.delete_registered_model_alias(self.name, CHALLENGER)

    def rollback(self) -> tuple[str, str]:
        """Swap champion and previous: the previous champion serves again. Returns (restored, demoted)."""
        champion, previous = self.version_with(CHAMPION), self.version_with(PREVIOUS)
        if previous is None or champion is None:
            raise LookupError("there is no previous champion to roll back to")
        self.client.set_registered_model_alias(self.name, CHAMPION, str(previous.version))
        self.client.set_registered_model_alias(self.name, PREVIOUS, str(champion.version))
        return str(previous.version), str(champion.version)


def has_store(tracking_uri: str) -> bool:
    """False when the default SQLite tracking store does not exist yet (no model was ever trained)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).exists()
    return True
