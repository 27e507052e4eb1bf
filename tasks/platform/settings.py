"""One typed Settings object for the whole product, read from `RTV_*` environment variables or `.env`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the pipeline has; read once at the edges (CLI, flows, API, dashboard) and passed in."""

    model_config = SettingsConfigDict(env_prefix="RTV_", env_file=".env", extra="ignore")

    env: Literal["dev", "staging", "production"] = Field(
        "dev",
        description="dev creates a key file on first use; staging and production require configured keys",
    )
    data_dir: Path = Field(
        Path("data"), description="local zones, the SQLite catalog and other embedded state"
    )
    catalog_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the catalog, e.g. postgresql+psycopg://user@host/db "
        "(default: SQLite in data_dir)",
    )
    storage: Literal["local", "s3", "azure"] = Field("local", description="where the zones live")

    # Object stores. AWS credentials come from boto3's chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...).
    backup_storage: Literal["none", "local", "s3", "azure"] = Field(
        "none", description="a second store every object is also written to (reads fall back to it)"
    )
    s3_bucket: str = Field("rtv-household-data", description="S3 bucket of the zones")
    s3_prefix: str = Field("", description="folder inside the S3 bucket that holds the zones")
    s3_endpoint_url: str | None = Field(None, description="endpoint of an S3-compatible store (default: AWS)")
    s3_region: str = Field("us-east-1", description="AWS region of the bucket")
    s3_block: str | None = Field(
        None, description="name of a saved prefect-aws S3Bucket block; when set it replaces the s3_* settings"
    )
    azure_container: str = Field("household-data", description="Azure Blob Storage container of the zones")
    azure_prefix: str = Field("", description="folder inside the container that holds the zones")
    azure_connection_string: SecretStr | None = Field(None, description="Azure Storage connection string")
    azure_block: str | None = Field(
        None,
        description="name of a saved prefect-azure AzureBlobStorageContainer block; when set it replaces "
        "the azure_* settings",
    )

    # Protection: comma-separated Fernet keys, newest first; a separate key for pseudonyms.
    fernet_keys: SecretStr | None = Field(None, description="comma-separated Fernet keys, newest first")
    pseudonym_key: SecretStr | None = Field(None, description="key for HMAC pseudonyms (never rotated)")
    key_file: Path | None = Field(
        None,
        description="JSON key file (0600) used when keys are not in the environment "
        "(default ~/.config/rtv/keys.json)",
    )
    key_secret_block: str | None = Field(
        None, description="name of a Prefect Secret block holding the key JSON"
    )

    # Input caps: stop zip bombs, giant lines and runaway files before they cost memory.
    max_upload_bytes: int = Field(1024**3, description="largest file accepted, in bytes")
    max_decompressed_bytes: int = Field(2 * 1024**3, description="largest unpacked size of a workbook")
    max_rows: int = Field(2_000_000, description="most data rows in one file")
    max_line_bytes: int = Field(1024**2, description="longest line of a CSV or JSON-lines file")
    max_json_depth: int = Field(32, description="deepest JSON nesting")

    # Validation and processing
    completeness_threshold: float = Field(0.95, description="batch completeness below this is a warning")
    distribution_min_rows: int = Field(100, description="batches smaller than this skip distribution checks")
    partition_rows: int = Field(250_000, description="rows per partition written to the zones")
    round_calendar: Literal["quarter", "month", "half", "year"] = Field(
        "quarter",
        description="survey round of a row no round was declared for, from its submitted_at (else its landing "
        "time) in UTC: quarter `2025-Q3`, month `2025-07`, half `2025-H2` or year `2025`",
    )
    task_runner: Literal["threads", "processes", "dask"] = Field(
        "threads", description="how partitions run in parallel: threads, local processes, or a Dask cluster"
    )
    dask_address: str | None = Field(
        None, description="scheduler of an existing Dask cluster (default: a LocalCluster)"
    )
    dask_workers: int = Field(2, description="worker processes of the LocalCluster when no address is given")
    archive_after_days: int = Field(
        180, description="zone objects and raw files older than this move to archive/"
    )
    retention_days: int | None = Field(
        None,
        description="archived objects and raw files older than this are deleted for good (empty: kept "
        "forever; must exceed archive_after_days)",
    )
    task_retries: int = Field(3, description="retries of each storage, catalog or network step")
    retry_backoff_seconds: float = Field(2.0, description="first retry delay; doubles on each retry")
    retry_jitter_factor: float = Field(0.5, description="random spread of retry delays (0 = none)")

    # Model lifecycle
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI, e.g. http://mlflow:5000 (default: SQLite in data_dir)"
    )
    model_name: str = Field("household-vulnerability", description="registered model name in MLflow")
    promotion_margin: float = Field(
        0.005, description="held-out ROC AUC a new version must gain over the champion to replace it"
    )
    min_new_samples: int = Field(
        50, description="new labelled rows since the champion's snapshot that trigger a retrain"
    )
    performance_threshold: float = Field(
        0.85, description="champion accuracy on new labelled rows below this triggers a retrain"
    )
    min_eval_samples: int = Field(
        50, description="new labelled rows needed before the champion's accuracy is judged"
    )
    retrain_max_age_days: int = Field(
        90, description="a champion older than this is retrained at the next check"
    )
    risk_band_cutoffs: tuple[float, float, float] = Field(
        (0.3, 0.6, 0.8),
        description="P(vulnerable) cut-offs between the Low, Medium, High and Critical risk bands",
    )

    # Dashboard
    prefect_ui_url: str = Field(
        "http://127.0.0.1:4200", description="Prefect UI the dashboard links flow runs and deployments to"
    )
    min_cell_size: int = Field(
        5, ge=0, description="charted and exported counts under this many households are suppressed (0: none)"
    )

    # API (field devices): tokens, request limits, network policy
    jwt_secret: SecretStr | None = Field(
        None,
        description="HMAC key that signs API tokens (dev: created once in data_dir/run/jwt.key, mode 0600; "
        "required in staging and production)",
    )
    jwt_issuer: str = Field("rtv-survey-api", description="`iss` claim of API tokens")
    jwt_audience: str = Field("rtv-field-devices", description="`aud` claim of API tokens")
    jwt_ttl_minutes: int = Field(
        30, ge=1, le=30, description="lifetime of an API token in minutes (at most 30)"
    )
    max_sync_surveys: int = Field(500, ge=1, description="most surveys in one offline sync batch")
    max_json_bytes: int = Field(4 * 1024**2, description="largest JSON request body, in bytes")
    rate_limit_per_minute: int = Field(
        6000, ge=1, description="API requests per minute one user may make (per API process)"
    )
    ip_allowlist: list[str] = Field(
        [],
        description='client networks allowed to call the API, JSON list of CIDRs, e.g. ["10.0.0.0/8"] '
        "(empty: all)",
    )
    cors_origins: list[str] = Field(
        [], description="browser origins allowed by CORS, JSON list (empty: CORS off)"
    )
    dispatch_interval_seconds: float = Field(
        2.0, gt=0, description="the API queues one ingest-landed run at most this often while surveys arrive"
    )

    # Monitoring: quality thresholds, alert mail, health (drift thresholds are calibrated in tasks/monitoring/drift_stats.py)
    max_quarantine_rate: float = Field(
        0.10, description="an ingestion quarantining more than this share of its rows is a threshold breach"
    )
    min_expectation_pass_rate: float = Field(
        0.95, description="a validation rule passing fewer than this share of an ingestion's rows is a breach"
    )
    volume_min_ratio: float = Field(
        0.2,
        description="an ingestion with fewer rows than this share of its source's recent median is a "
        "volume anomaly",
    )
    volume_history: int = Field(
        10,
        ge=3,
        description="earlier completed ingestions of the same source the volume median is taken over "
        "(at least 3 are needed)",
    )
    late_run_minutes: int = Field(
        60, description="a scheduled run not started this many minutes after its time is late"
    )
    smtp_host: str | None = Field(
        None,
        description="SMTP server alert mail goes through (empty: alerts are "
        "recorded in the catalog, not mailed)",
    )
    smtp_port: int = Field(587, description="SMTP server port")
    smtp_starttls: bool = Field(
        True, description="upgrade the SMTP connection with STARTTLS before logging in"
    )
    smtp_user: str | None = Field(None, description="SMTP login (empty: no login)")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    alert_emails: str = Field("", description="comma-separated addresses that receive alert mail")
    alert_sender: str = Field("rtv-pipeline@localhost", description="From address of alert mail")
    alert_group_minutes: int = Field(
        60,
        ge=1,
        description="repeats of the same alert within this window are grouped into one later summary",
    )
    dashboard_url: str = Field(
        "http://127.0.0.1:8501", description="dashboard base URL that alert mail links to"
    )

    @model_validator(mode="after")
    def _retention_after_archive(self) -> Settings:
        if self.retention_days is not None and self.retention_days <= self.archive_after_days:
            raise ValueError(
                f"RTV_RETENTION_DAYS ({self.retention_days}) must exceed RTV_ARCHIVE_AFTER_DAYS "
                f"({self.archive_after_days}): data is deleted only after it was archived"
            )
        return self

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_mlflow_uri(self) -> str:
        """MLflow tracking URI, defaulting to a SQLite store inside the data directory."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"

    @property
    def resolved_catalog_url(self) -> str:
        """Catalog URL, defaulting to a SQLite file inside the data directory."""
        return self.catalog_url or f"sqlite:///{self.data_dir / 'catalog.db'}"

    def fingerprint(self) -> str:
        """A sha256 hex digest of every value, secrets included: equal for equal Settings, a cache key."""
        values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self}
        return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()


UPLOAD_CAP_MB = 200  # Streamlit holds an upload in memory, and uploads past ~100-200 MB fail behind proxies


def upload_limit_mb(max_upload_bytes: int) -> int:
    """Largest browser upload in MB (Streamlit's maxUploadSize): RTV_MAX_UPLOAD_BYTES, capped at UPLOAD_CAP_MB."""
    return max(1, min(max_upload_bytes // (1024 * 1024), UPLOAD_CAP_MB))


def settings_table() -> str:
    """The configuration table for README: every setting, its default and what it does."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "" if field.default in (None, "") else f"`{field.default}`"  # `` would show as-is
        rows.append(f"| `RTV_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
