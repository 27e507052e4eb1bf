"""Key rotation: add a Fernet key, re-encrypt every stored file and sealed column under it, retire the old keys.

A rotation is resumable by design: the key set holds [new, old…] until every object opens with the new key
alone, and each object is rewritten atomically, so running `rtv keys rotate` again after an interruption
skips what is done and finishes the rest. Old keys are retired only after a full check finds nothing needs them.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from cryptography.fernet import Fernet, InvalidToken

from tasks.ingest.identity import ENCRYPTED, PII_KEY
from tasks.ingest.zones import write_parquet
from tasks.platform.storage import ObjectStore
from tasks.protection.keystore import KeyStore
from tasks.protection.protect import (
    RAW_MAGIC,
    Keyring,
    decrypt_stream,
    encrypt_stream,
    open_values,
    seal_columns,
)

KEYED_ZONES = ("raw/", "validated/", "quarantine/", "processed/", "predictions/", "archive/")
ROTATED, CURRENT, PLAIN = "rotated", "current", "no keys"


def fingerprint(key: str) -> str:
    """A short, non-secret name for a key (for logs and the audit trail)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _opens(newest: Fernet, wrapped: bytes) -> bool:
    try:
        newest.decrypt(wrapped)
        return True
    except InvalidToken:
        return False


def _raw_wrapped_key(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as handle:
        head = handle.read(len(RAW_MAGIC) + 4)
        return handle.read(int.from_bytes(head[-4:], "big"))


def is_current(store: ObjectStore, key: str, newest: Fernet) -> bool | None:
    """Whether every data key in the object is wrapped under `newest`; None when it holds no keys."""
    if key.endswith(".enc"):
        return _opens(newest, _raw_wrapped_key(store, key))
    if key.endswith(".parquet"):
        data = io.BytesIO(store.get(key))
        if PII_KEY not in pl.read_parquet_schema(data):
            return None
        wrapped = pl.read_parquet(data, columns=[PII_KEY])[PII_KEY].unique().to_list()
        return all(_opens(newest, k.encode()) for k in wrapped if k)
    return None


def _rotate_raw(store: ObjectStore, key: str, keyring: Keyring) -> None:
    with tempfile.NamedTemporaryFile(prefix="rtv-rotate-") as spool, store.open(key) as source:
        for piece in encrypt_stream(keyring, decrypt_stream(keyring, source)):  # streamed: files can be large
            spool.write(piece)
        spool.flush()
        store.put_file(key, Path(spool.name), overwrite=True)


def _rotate_parquet(store: ObjectStore, key: str, keyring: Keyring) -> None:
    frame = pl.read_parquet(io.BytesIO(store.get(key)))
    plain = {
        name: pl.Series(
            name,
            open_values(keyring, frame[PII_KEY].to_list(), frame[column].to_list(), name),
            dtype=pl.String,
        )
        for name, column in ENCRYPTED.items()
        if column in frame.columns
    }
    wrapped, sealed = seal_columns(keyring, plain)  # a fresh data key, wrapped by the newest Fernet key
    rotated = frame.with_columns(
        *[sealed[name].alias(ENCRYPTED[name]) for name in plain], pl.lit(wrapped).alias(PII_KEY)
    )
    write_parquet(store, key, rotated, overwrite=True)  # one atomic replace


def rotate_object(store: ObjectStore, key: str, keyring: Keyring) -> str:
    """Re-encrypt one object under the keyring's newest key: ROTATED, CURRENT (already), or PLAIN (no keys)."""
    current = is_current(store, key, Fernet(keyring.fernet_keys[0]))
    if current is None:
        return PLAIN
    if current:
        return CURRENT
    (_rotate_raw if key.endswith(".enc") else _rotate_parquet)(store, key, keyring)
    return ROTATED


@dataclass
class Rotation:
    """What a rotation run did."""

    new_key: str
    retired: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {ROTATED: 0, CURRENT: 0, PLAIN: 0})
    resumed: bool = False


def keyed_objects(store: ObjectStore) -> list[str]:
    """Every object that may hold wrapped keys (raw files and zone Parquet, archived ones included)."""
    return [key for prefix in KEYED_ZONES for key in store.list(prefix.rstrip("/"))]


def rotate_keys(
    store: ObjectStore, keys: KeyStore, *, say: Callable[[str], None] = lambda _: None
) -> Rotation:
    """Add a key (or resume an unfinished rotation), re-encrypt everything, then retire the old keys."""
    keyring = keys.load()
    resumed = len(keyring.fernet_keys) > 1
    if not resumed:
        keyring = Keyring((Fernet.generate_key().decode(), *keyring.fernet_keys), keyring.pseudonym_key)
        keys.save(keyring)  # from here on new writes use the new key and old keys still read
    result = Rotation(new_key=fingerprint(keyring.fernet_keys[0]), resumed=resumed)
    objects = keyed_objects(store)
    say(
        f"{'resuming' if resumed else 'rotating'}: {len(objects)} objects to check under key {result.new_key}"
    )
    for key in objects:
        result.counts[rotate_object(store, key, keyring)] += 1
    # Retire only when a fresh pass finds every object current: a writer that started before the new key
    # was saved may have added objects under an old key meanwhile.
    newest = Fernet(keyring.fernet_keys[0])
    stale = [key for key in keyed_objects(store) if is_current(store, key, newest) is False]
    if stale:
        raise RuntimeError(
            f"{len(stale)} objects were written under an old key during the rotation; "
            "run `rtv keys rotate` again"
        )
    result.retired = [fingerprint(k) for k in keyring.fernet_keys[1:]]
    if keys.writable:
        keys.save(Keyring(keyring.fernet_keys[:1], keyring.pseudonym_key))
    else:
        say("every object is under the first key of RTV_FERNET_KEYS: remove the other keys from it now")
    say(
        f"rotated {result.counts[ROTATED]}, already current {result.counts[CURRENT]}; retired {result.retired}"
    )
    return result
