"""Request and response models; the survey model is generated from the data contract (tasks/ingest/contract.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tasks.ingest import contract
from tasks.ingest.contract import Role
from tasks.ingest.rounds import ROUND_COLUMN, ROUND_PATTERN

_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "datetime": str}
# left out of the content hash (see tasks/ingest/submissions.py); the round also stays out of the landed bytes
TRANSPORT = frozenset((*contract.METADATA_NAMES, ROUND_COLUMN))
ROUND_DESCRIPTION = (
    "survey round of the rows, e.g. 2025-baseline or 2026-Q2 (default: from each row's submitted_at, else "
    "the landing time, on the server's round calendar)"
)
ANSWERS = frozenset(contract.CANONICAL_NAMES)


def _survey_fields() -> dict[str, Any]:
    """One field per contract source column (alias = exact source header) plus the collection metadata.

    Types come from the contract; ranges, code sets and cross-field rules are left to the validation suite,
    so an out-of-range answer is accepted and quarantined for review rather than lost at the door. Derived
    columns (totals, /Day values, the USD copies) and nullable columns may be omitted.
    """
    fields: dict[str, Any] = {}
    for col in contract.COLUMNS:
        kind = _TYPES[col.dtype]
        if col.nullable or col.has(Role.DERIVED):
            fields[col.name] = (kind | None, Field(None, alias=col.source, description=col.label))
        else:
            fields[col.name] = (kind, Field(..., alias=col.source, description=col.label))
    for col in contract.METADATA:
        if col.name == "instance_id":
            fields[col.name] = (str, Field(..., pattern=col.pattern, description=col.label))
        else:
            fields[col.name] = (
                str | None,
                Field(None, pattern=col.pattern, max_length=128, description=col.label),
            )
    # transport metadata: kept on the ingestion, never in the answers' hash nor in the landed record
    fields[ROUND_COLUMN] = (
        str | None,
        Field(None, pattern=ROUND_PATTERN, max_length=40, description=ROUND_DESCRIPTION),
    )
    return fields


SurveyIn: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "SurveyIn",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=512, populate_by_name=False),
    __doc__="One household survey: the contract's exact source headers plus submission metadata.",
    **_survey_fields(),
)


class Accepted(BaseModel):
    """A survey or file was landed (202) or had been landed before (200)."""

    ingestion_id: str
    status_url: str
    outcome: Literal["accepted", "replayed"]
    version: int | None = None


class Refused(BaseModel):
    """Why a request was refused (never echoing submitted values)."""

    detail: str


class FileInfo(BaseModel):
    """What the server received; the name is metadata only, sanitised."""

    filename: str | None
    size_bytes: int
    sha256: str
    format: str


class FileAccepted(Accepted):
    """A landed file."""

    file_info: FileInfo


class SyncOutcome(BaseModel):
    """What became of one survey of a sync batch."""

    index: int
    instance_id: str | None = None
    outcome: Literal["accepted", "replayed", "conflict", "invalid"]
    ingestion_id: str | None = None
    version: int | None = None
    reason: str | None = None


class SyncResult(BaseModel):
    """A sync batch: accepted surveys share one ingestion."""

    ingestion_id: str | None
    status_url: str | None
    counts: dict[str, int]
    outcomes: list[SyncOutcome]


class Status(BaseModel):
    """Where an ingestion is, from the catalog and its Prefect flow run."""

    ingestion_id: str
    state: Literal["landed", "running", "completed", "completed_with_quarantine", "failed", "rejected"]
    door: str
    received_at: str | None
    finished_at: str | None = None
    format: str | None = None
    flow_run_state: str | None = None
    rows_received: int | None = None
    rows_accepted: int | None = None
    rows_quarantined: int | None = None
    rows_duplicate: int | None = None
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)
    predictions: dict[str, Any] | None = None
    reason: str | None = None


class Token(BaseModel):
    """A signed bearer token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    role: str


class ComponentCheck(BaseModel):
    """One dependency: whether it answered, and a one-line message (never a secret or a data value)."""

    ok: bool
    message: str


class Ready(BaseModel):
    """Readiness: each dependency and whether it answered."""

    ready: bool
    checks: dict[str, ComponentCheck]


class FollowupHousehold(BaseModel):
    """A household due a visit, where it was last seen and what that visit found."""

    reference: str = Field(
        description="stable reference that is not PII (hh- and the start of its pseudonym)"
    )
    household_id: str | None = Field(
        description="decrypted in production for the roles the PII rule allows, else masked (district code and "
        "shape); null once retention deleted the zone object that held it"
    )
    district: str
    cluster: str
    village: str
    last_round: str
    last_status: str | None = Field(description="observed ProgressStatus at the last visit")
    last_risk_band: str | None = Field(description="predicted risk band at the last visit (null: not scored)")
    last_visit_at: str = Field(description="when the last visit was collected, UTC ISO 8601")


class Followups(BaseModel):
    """Households seen in an earlier round and not yet visited in `round`, ordered by village."""

    round: str | None = Field(description="the round asked for, else the current one; null before any visit")
    upcoming: bool = Field(description="the round has no visit yet: every household seen so far is due")
    villages: list[str] | None = Field(
        description="the villages listed, as DISTRICT/CLUSTER/VILLAGE; null means every village"
    )
    ids_revealed: bool = Field(description="whether household ids are decrypted (else masked)")
    households: list[FollowupHousehold]
    count: int
    message: str | None = None
