"""Score households that arrived while no model was serving, once a champion exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.ingest.households import update_predictions
from tasks.ingest.zones import read_parquet, write_once
from tasks.model.predictions import score_with
from tasks.model.registry import Champion

if TYPE_CHECKING:
    from tasks.runtime import Runtime


def score_unscored(rt: Runtime, champion: Champion) -> dict[str, int]:
    """Write predictions for every processed object that has none; returns objects and rows scored.

    Households scored earlier keep the version that scored them (their predictions are a record of what a
    manager was shown). The new predictions go to the registry's visits too. Object names mirror the
    processed ones, and an object is catalogued after the registry took its predictions, so an interrupted run
    simply runs again.
    """
    scored = {o.key for o in rt.catalog.zone_objects(zone="predictions")}
    done = {"objects": 0, "rows": 0}
    for obj in rt.catalog.zone_objects(zone="processed"):
        target = "predictions/" + obj.key.removeprefix("processed/")
        if target in scored:
            continue
        processed = read_parquet(rt.store, obj.key)
        predictions = score_with(champion, processed, rt.settings)
        written = write_once(rt.store, target, predictions)
        # predictions carry no row identity: the processed rows they were scored from do
        identities = processed.select("ingestion_id", "source_row", "row_identity")
        update_predictions(rt.catalog, predictions.join(identities, on=["ingestion_id", "source_row"]))
        rt.catalog.add_zone_objects(obj.ingestion_id, [written])
        done["objects"] += 1
        done["rows"] += predictions.height
    return done
