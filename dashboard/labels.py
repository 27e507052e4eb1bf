"""Column labels on screen: the data contract's and the features' labels, plus columns only predictions have."""

from __future__ import annotations

from tasks.ingest import contract
from tasks.ingest.features import LABELS as FEATURE_LABELS

LABELS: dict[str, str] = (
    contract.LABELS
    | FEATURE_LABELS
    | {
        "household": contract.LABELS["household_id"],
        "household_ref": "Reference",
        "household_pseudonym": "Household (pseudonym)",
        "p_vulnerable": "P(vulnerable)",
        "expected_per_day": "Expected USD/day",
        "predicted_status": "Predicted status",
        "observed_status": "Observed status",
        "status": "Status",
        "risk_band": "Risk band",
        "model_version": "Model version",
        "ingestion_id": "Ingestion",
        "source_row": "Row",
        "source": "Source",
        "scored_at": "Scored at",
        "households": "Households",
        "vulnerable": "Vulnerable",
        "share_vulnerable": "Share vulnerable",
        "high_or_critical": "High or critical risk",
    }
)


def label(name: str) -> str:
    """Human label of a column or model feature (one-hot features read `Loan sources = 3`)."""
    if name in LABELS:
        return LABELS[name]
    base, sep, code = name.partition("=")
    return f"{LABELS.get(base, base)} = {code}" if sep else name.replace("_", " ").capitalize()
