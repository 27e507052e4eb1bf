"""Composition root: build the store, catalog and keys the Settings describe, once per process."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from tasks.ingest.readers import ReadCaps
from tasks.model.registry import Champion, Registry, has_store
from tasks.platform.catalog import Catalog
from tasks.platform.cloud_storage import AzureStore, ReplicatedStore, S3Store
from tasks.platform.settings import Settings
from tasks.platform.storage import LocalStore, ObjectStore
from tasks.protection.keystore import LiveKeys, key_store
from tasks.protection.protect import Keyring


class Runtime:
    """Everything a task needs, built lazily from Settings; pickles as its Settings alone."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}  # connections and keys are rebuilt in the receiving process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]

    @cached_property
    def store(self) -> ObjectStore:
        """The zone store chosen by `RTV_STORAGE`, replicated to `RTV_BACKUP_STORAGE` when one is set."""
        s = self.settings
        primary = self._open_store(s.storage)
        if s.backup_storage == "none":
            return primary
        if s.backup_storage == s.storage:
            raise ValueError("RTV_BACKUP_STORAGE must name a different store than RTV_STORAGE")
        return ReplicatedStore(primary, self._open_store(s.backup_storage))

    def _open_store(self, kind: str) -> ObjectStore:
        """One store of the given kind, configured by Settings (a saved block when one is named)."""
        if kind == "s3":
            return S3Store.from_settings(self.settings)
        if kind == "azure":
            return AzureStore.from_settings(self.settings)
        return LocalStore(self.settings.data_dir)

    @cached_property
    def catalog(self) -> Catalog:
        """The catalog database, migrated to the newest schema."""
        return Catalog(self.settings.resolved_catalog_url)

    @cached_property
    def keys(self) -> LiveKeys:
        """The key store the settings point at, followed live (a rotation elsewhere is picked up)."""
        return LiveKeys(key_store(self.settings))

    @property
    def keyring(self) -> Keyring:
        """Keys from the environment, a Prefect Secret block, or the key file (created on first use in dev)."""
        return self.keys.get()

    @cached_property
    def registry(self) -> Registry:
        """The MLflow model registry (imports MLflow on first use)."""
        s = self.settings
        return Registry(s.resolved_mlflow_uri, s.model_name, s.data_dir / "mlartifacts")

    def champion(self) -> Champion | None:
        """The serving model, or None; skips importing MLflow when no model store exists yet."""
        return self.registry.champion() if has_store(self.settings.resolved_mlflow_uri) else None

    @property
    def caps(self) -> ReadCaps:
        """Input caps for readers."""
        s = self.settings
        return ReadCaps(
            max_bytes=s.max_upload_bytes,
            max_decompressed_bytes=s.max_decompressed_bytes,
            max_rows=s.max_rows,
            max_line_bytes=s.max_line_bytes,
            max_json_depth=s.max_json_depth,
        )


_runtimes: dict[str, Runtime] = {}


def runtime_for(settings: Settings) -> Runtime:
    """One Runtime per distinct Settings in this process (connections and keys are reused)."""
    key = settings.fingerprint()
    if key not in _runtimes:
        _runtimes[key] = Runtime(settings)
    return _runtimes[key]
