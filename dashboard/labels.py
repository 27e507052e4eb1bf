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
        "survey_round": "Round",
        "visits": "Visits",
        "first_round": "First round",
        "last_round": "Last round",
        "collected_at": "Collected",
        "status_from": "Status before",
        "status_to": "Status after",
        "band_from": "Risk band before",
        "band_to": "Risk band after",
        "seen_first": "Seen in the first round",
        "found_again": "Found again",
        "coverage": "Found again (share)",
        "moved_out": "Moved out of vulnerability",
        "fell_back": "Fell back",
        "net": "Net",
        "both": "Seen in both rounds",
        "last_seen": "Last seen",
    }
)


def label(name: str) -> str:
    """Human label of a column or model feature (one-hot features read `Loan sources = 3`)."""
    if name in LABELS:
        return LABELS[name]
    base, sep, code = name.partition("=")
    return f"{LABELS.get(base, base)} = {code}" if sep else name.replace("_", " ").capitalize()
