"""Score a file without ingesting it: read, conform, protect identifiers, predict with the champion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from tasks.ingest.conform import NotASurveyTable, conform, score_header
from tasks.ingest.features import add_features
from tasks.ingest.readers import RejectedFile, read_table
from tasks.model.predictions import score_with, summarise
from tasks.protection.protect import pseudonymize

if TYPE_CHECKING:
    from tasks.runtime import Runtime


class ScoringError(ValueError):
    """The file cannot be scored (unreadable, not a survey, or no champion); one line for the user."""


def score_file(rt: Runtime, data: bytes) -> tuple[pl.DataFrame, dict[str, object]]:
    """Predictions for every row of a file (no identifiers in clear) and their summary; nothing is stored."""
    champion = rt.champion()
    if champion is None:
        raise ScoringError("no champion model yet: ingest labelled data and run `rtv retrain`")
    try:
        table = read_table(data, rt.caps, score_header=score_header)
        conformed = conform(table.frames(), typed=table.typed)
    except (RejectedFile, NotASurveyTable) as bad:
        raise ScoringError(str(bad)) from None
    frame = conformed.frame.with_columns(
        pseudonymize(rt.keyring, conformed.frame["household_id"]).alias("household_pseudonym")
    ).drop("household_id", "officer_id", "device_id")
    predictions = score_with(champion, add_features(frame), rt.settings)
    return predictions, {**summarise(predictions), "rows": frame.height}
