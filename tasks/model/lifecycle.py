"""When to retrain, on what data: the triggers and the labelled snapshot.

Training reads visits: a row trains the model only while it is a live visit (final, not superseded), so a
household whose visit in a round was replaced (an approved repeat, an API edit) is learnt from once per round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from sqlalchemy import Connection, Select, select

from tasks.ingest import contract
from tasks.ingest.rules import PSEUDONYM
from tasks.ingest.zones import read_parquet
from tasks.model.estimator import VULNERABLE_BELOW, design_matrix
from tasks.model.evaluation import FIRST_PLACE, SnapshotDescription
from tasks.model.registry import CHAMPION, Champion
from tasks.platform.catalog.monitoring import aware, drift_checks
from tasks.platform.catalog.registry_models import HouseholdRegistry, Visit

if TYPE_CHECKING:
    from tasks.runtime import Runtime

DONE = ("completed", "completed_with_quarantine")
MIN_TRAINING_ROWS = 200


@dataclass
class TriggerCheck:
    """Which retrain triggers fired, and the figures behind them."""

    fired: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    new_labelled_rows: int = 0
    accuracy_on_new: float | None = None
    champion_version: str | None = None

    @property
    def should_retrain(self) -> bool:
        return bool(self.fired)

    def fire(self, trigger: str, reason: str) -> None:
        self.fired.append(trigger)
        self.reasons.append(reason)


def processed_rows(rt: Runtime, ingestion_ids: list[str] | None = None) -> pl.DataFrame:
    """Accepted rows of the given (or all completed) ingestions from the processed zone, via the catalog's lineage."""
    wanted = (
        set(ingestion_ids)
        if ingestion_ids is not None
        else {i.id for i in rt.catalog.list_ingestions(limit=1_000_000) if i.status in DONE}
    )
    # archived objects too: the model learns from all history, wherever it is stored
    keys = [
        o.key
        for o in rt.catalog.zone_objects(zone="processed", include_archived=True)
        if o.ingestion_id in wanted
    ]
    if not keys:
        return pl.DataFrame()
    return pl.concat([read_parquet(rt.store, k) for k in keys], how="diagonal_relaxed")


ROW_IDENTITY = "row_identity"  # the processed zone's name for `tasks.ingest.identity.IDENTITY`


def _strings(connection: Connection, query: Select[str]) -> pl.Series:
    return pl.Series(connection.execute(query).scalars().all(), dtype=pl.String)


def live_visits(rt: Runtime, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows that are live visits (final, not superseded), matched on row identity.

    Rows of an ingestion with no visit at all (landed before the registry existed) are all kept, as before.
    """
    if frame.height == 0 or ROW_IDENTITY not in frame.columns:
        return frame
    with rt.catalog.engine.connect() as connection:
        live = _strings(
            connection,
            select(Visit.row_identity).where(Visit.state == "final", Visit.superseded_by.is_(None)),
        )
        registered = _strings(connection, select(Visit.ingestion_id).distinct())
    return frame.filter(
        pl.col(ROW_IDENTITY).cast(pl.String).is_in(live)
        | ~pl.col("ingestion_id").cast(pl.String).is_in(registered)
    )


def labelled_rows(rt: Runtime, ingestion_ids: list[str] | None = None) -> pl.DataFrame:
    """Processed rows of the given (or all completed) ingestions that carry the target and are live visits."""
    frame = processed_rows(rt, ingestion_ids)
    if frame.height:
        frame = frame.filter(pl.col(contract.TARGET).is_not_null())
    return live_visits(rt, frame)


def labelled_snapshot(rt: Runtime) -> tuple[pl.DataFrame, SnapshotDescription]:
    """Every live visit that carries the target, with its household's first place, and a description."""
    frame = labelled_rows(rt)
    if frame.height and PSEUDONYM in frame.columns:
        # CV groups and the held-out split follow where a household was first seen, so a household that
        # moved village between rounds never has visits on both sides of a split.
        with rt.catalog.engine.connect() as connection:
            found = connection.execute(
                select(HouseholdRegistry.household, *(getattr(HouseholdRegistry, c) for c in FIRST_PLACE))
            ).all()
        first = pl.DataFrame(
            [tuple(r) for r in found],
            schema={PSEUDONYM: pl.String, **dict.fromkeys(FIRST_PLACE, pl.String)},
            orient="row",
        )
        own = {c: c.removeprefix("first_") for c in FIRST_PLACE}
        frame = (
            frame.drop([c for c in FIRST_PLACE if c in frame.columns])
            .with_columns(pl.col(PSEUDONYM).cast(pl.String))
            .join(first, on=PSEUDONYM, how="left")
            # households the registry does not know yet keep their own row's place
            .with_columns(pl.coalesce(pl.col(c), pl.col(o).cast(pl.String)).alias(c) for c, o in own.items())
        )
    ingestions = sorted(frame["ingestion_id"].unique().to_list()) if frame.height else []
    return frame, {
        "ingestions": ingestions,
        "rows": frame.height,
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def input_drift(features: dict[str, dict[str, object]]) -> set[str]:
    """The flagged input features of a stored drift result: programme columns never count.

    Checked by name as well as by `kind`: results stored before programme change was told apart flagged
    the outcome and income columns as drift.
    """
    return {
        name
        for name, row in features.items()
        if row.get("flag")
        and row.get("kind") != "programme"
        and name not in contract.PROGRAMME_OUTCOME_COLUMNS
    }


def recent_drift(rt: Runtime, version: str, created_at: float) -> str | None:
    """Why drift calls for a retrain: flagged checks against this champion since it or the last retrain, or None."""
    since = datetime.fromtimestamp(created_at, UTC)
    last = next((d.decided_at for d in rt.catalog.decisions(limit=20) if d.decision == "retrain"), None)
    if last is not None:  # a retrain that kept this champion has already answered the drift before it
        since = max(since, aware(last))
    checks = [
        c for c in drift_checks(rt.catalog, since=since, flagged=True) if c.reference_version == version
    ]
    flagged = [(c, names) for c in checks if (names := input_drift(c.features))]
    if not flagged:
        return None
    features = sorted({name for _, names in flagged for name in names})
    where = ", ".join(c.ingestion_id or f"{c.scope} batch" for c, _ in flagged[:5])
    return f"drift flagged in {len(flagged)} check(s) since the last retrain ({where}): {', '.join(features)}"


def check_triggers(
    rt: Runtime,
    champion: Champion | None,
    *,
    force: bool = False,
    drift: bool = False,
    now: float | None = None,
) -> TriggerCheck:
    """Evaluate every retrain trigger: no champion, new labelled rows, champion accuracy, drift, age, manual."""
    s = rt.settings
    check = TriggerCheck(champion_version=champion.version if champion else None)
    if force:
        check.fire("manual", "retrain requested by hand")
    if champion is None:
        check.fire("no_champion", "no champion model yet")
        return check
    known = set(champion.snapshot.get("ingestions", []))
    new_ids = [
        i.id for i in rt.catalog.list_ingestions(limit=1_000_000) if i.status in DONE and i.id not in known
    ]
    new = labelled_rows(rt, new_ids) if new_ids else pl.DataFrame()
    check.new_labelled_rows = new.height
    if new.height >= s.min_new_samples:
        check.fire(
            "new_samples",
            f"{new.height} new labelled rows since the champion's snapshot (threshold {s.min_new_samples})",
        )
    if new.height >= s.min_eval_samples:
        truth = new[contract.TARGET].to_numpy() < VULNERABLE_BELOW
        predicted = champion.model.predict_proba(design_matrix(new))[:, 1] >= 0.5
        check.accuracy_on_new = round(float(np.mean(truth == predicted)), 4)
        if check.accuracy_on_new < s.performance_threshold:
            check.fire(
                "performance",
                f"champion accuracy {check.accuracy_on_new:.3f} on {new.height} new rows is "
                f"below {s.performance_threshold}",
            )
    drifted = recent_drift(rt, champion.version, champion.created_at)
    if drift or drifted:
        check.fire("drift", drifted or "drift flagged on recent ingestions")
    age_days = ((now or time.time()) - champion.created_at) / 86400
    if age_days >= s.retrain_max_age_days:
        check.fire("schedule", f"champion is {age_days:.0f} days old (limit {s.retrain_max_age_days})")
    return check


@dataclass(frozen=True)
class RollbackResult:
    """The version serving again after a rollback, and the champion it replaced."""

    restored: str
    demoted: str


def rollback_champion(rt: Runtime) -> RollbackResult:
    """Make the previous champion serve again and record the decision; LookupError if there is none."""
    restored, demoted = rt.registry.rollback()
    rt.catalog.record_decision(
        triggers={"fired": ["rollback"]},
        decision="rollback",
        reason=f"rolled back from v{demoted} to v{restored}",
        model_name=rt.settings.model_name,
        model_version=restored,
        alias=CHAMPION,
    )
    return RollbackResult(restored, demoted)
