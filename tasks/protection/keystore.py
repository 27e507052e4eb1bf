"""Where the keys live: the environment (read-only), a Prefect Secret block, or a 0600 key file."""

from __future__ import annotations

import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path

from tasks.platform.settings import Settings
from tasks.protection.protect import Keyring, ProtectionError, load_key_file, write_key_file

DEFAULT_KEY_FILE = Path("~/.config/rtv/keys.json")


@dataclass(frozen=True)
class EnvKeys:
    """Keys from RTV_FERNET_KEYS / RTV_PSEUDONYM_KEY; a rotation cannot write them back."""

    fernet_keys: str
    pseudonym_key: str
    writable = False
    where = "RTV_FERNET_KEYS"

    def load(self) -> Keyring:
        return Keyring(tuple(k.strip() for k in self.fernet_keys.split(",") if k.strip()), self.pseudonym_key)

    def save(self, keyring: Keyring) -> None:
        raise ProtectionError(
            "keys come from RTV_FERNET_KEYS: put the new key first there (newest first), run "
            "`rtv keys rotate` again, then remove the old keys"
        )


@dataclass(frozen=True)
class SecretBlockKeys:
    """Keys in a Prefect Secret block (JSON with fernet_keys and pseudonym_key)."""

    block: str
    writable = True

    @property
    def where(self) -> str:
        return f"Prefect Secret block {self.block!r}"

    def load(self) -> Keyring:
        from prefect.blocks.system import Secret

        secret = Secret.load(self.block)
        if isinstance(secret, Coroutine):  # Prefect hands out a coroutine only inside a running event loop
            secret.close()
            raise ProtectionError(f"{self.where} must be loaded from synchronous code")
        value = secret.get()
        return Keyring.from_json(value if isinstance(value, str) else json.dumps(value))

    def save(self, keyring: Keyring) -> None:
        from prefect.blocks.system import Secret

        Secret(value=json.loads(keyring.to_json())).save(self.block, overwrite=True)


@dataclass(frozen=True)
class FileKeys:
    """Keys in a JSON file with mode 0600; created on first use in dev."""

    path: Path
    create: bool
    writable = True

    @property
    def where(self) -> str:
        return str(self.path)

    def load(self) -> Keyring:
        return load_key_file(self.path, create=self.create)

    def save(self, keyring: Keyring) -> None:
        write_key_file(self.path, keyring)


KeyStore = EnvKeys | SecretBlockKeys | FileKeys


class LiveKeys:
    """A keyring that follows its store: reloaded when the key file changes or, for blocks, every `ttl` s.

    Long-running processes (API, dashboard, worker) must pick up a rotation, or they would keep writing under
    a key that is about to be retired.
    """

    def __init__(self, store: KeyStore, ttl: float = 30.0) -> None:
        self.store, self.ttl = store, ttl
        self._keyring: Keyring | None = None
        self._version: object = None

    def _current_version(self) -> object:
        if isinstance(self.store, FileKeys):
            return self.store.path.stat().st_mtime_ns if self.store.path.exists() else None
        if isinstance(self.store, SecretBlockKeys):
            return int(time.monotonic() // self.ttl)
        return "static"

    def get(self) -> Keyring:
        """The keyring as the store has it now."""
        version = self._current_version()
        if self._keyring is None or version != self._version:
            self._keyring = self.store.load()
            self._version = self._current_version()
        return self._keyring


def key_store(settings: Settings) -> KeyStore:
    """The key store the settings point at: environment first, then a Secret block, then the key file."""
    if settings.fernet_keys and settings.pseudonym_key:
        return EnvKeys(settings.fernet_keys.get_secret_value(), settings.pseudonym_key.get_secret_value())
    if settings.key_secret_block:
        return SecretBlockKeys(settings.key_secret_block)
    path = (settings.key_file or DEFAULT_KEY_FILE).expanduser()
    if settings.env != "dev" and not path.exists():
        raise ProtectionError(
            f"no keys configured for {settings.env}: set RTV_FERNET_KEYS and RTV_PSEUDONYM_KEY"
        )
    return FileKeys(path, create=settings.env == "dev")
