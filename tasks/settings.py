"""One typed Settings object for the whole product, read from `RTV_*` environment variables or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the pipeline has; read once at the edges (CLI, flows, API, dashboard) and passed in."""

    model_config = SettingsConfigDict(env_prefix="RTV_", env_file=".env", extra="ignore")

    env: Literal["dev", "staging", "production"] = "dev"
    data_dir: Path = Path("data")
    catalog_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under data_dir")

    # Storage zones
    storage: Literal["local", "s3", "azure"] = "local"
    backup_storage: Literal["none", "local", "s3", "azure"] = "none"
    s3_bucket: str = "rtv-household-data"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_block: str | None = Field(default=None, description="name of a saved prefect-aws S3Bucket block")
    azure_container: str = "household-data"
    azure_connection_string: SecretStr | None = None
    azure_block: str | None = Field(default=None, description="name of a saved AzureBlobStorageContainer block")

    # Protection: comma-separated Fernet keys, newest first; a separate key for pseudonyms.
    fernet_keys: SecretStr | None = None
    pseudonym_key: SecretStr | None = None
    key_file: Path | None = Field(default=None, description="JSON key file (0600) used when keys are not in env")
    key_secret_block: str | None = Field(default=None, description="Prefect Secret block holding the key JSON")

    # Input caps: stop zip bombs, giant lines and runaway files before they cost memory.
    max_upload_bytes: int = 1024 * 1024 * 1024
    max_decompressed_bytes: int = 2 * 1024 * 1024 * 1024
    max_rows: int = 2_000_000
    max_line_bytes: int = 1024 * 1024
    max_json_depth: int = 32

    # Validation
    completeness_threshold: float = 0.95
    distribution_min_rows: int = 100
    derivation_abs_tolerance: float = 0.01

    # Processing
    partition_rows: int = 250_000
    task_runner: Literal["threads", "processes", "dask"] = "threads"
    dask_address: str | None = None
    task_retries: int = 3
    retry_backoff_seconds: float = 2.0
    retry_jitter_factor: float = 0.5

    # Model lifecycle
    mlflow_tracking_uri: str | None = None
    model_name: str = "household-vulnerability"
    promotion_margin: float = 0.005
    min_new_samples: int = 50
    performance_threshold: float = 0.85
    risk_band_cutoffs: tuple[float, float, float] = (0.3, 0.6, 0.8)

    # Orchestration
    work_pool: str = "rtv-pool"
    prefect_ui_url: str = "http://127.0.0.1:4200"
    dashboard_url: str = "http://127.0.0.1:8501"

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_catalog_url(self) -> str:
        """Catalog URL, defaulting to a SQLite file inside the data directory."""
        return self.catalog_url or f"sqlite:///{self.data_dir / 'catalog.db'}"

    @property
    def resolved_mlflow_uri(self) -> str:
        """MLflow tracking URI, defaulting to a SQLite store inside the data directory."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"

    @property
    def pii_visible_by_default(self) -> bool:
        """Only production shows decrypted identifiers, and then only to privileged roles."""
        return self.env == "production"
