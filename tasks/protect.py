"""Protection of personal data: keys, keyed pseudonyms, Fernet field encryption, raw-file envelope encryption.

Identifiers are Fernet tokens (MultiFernet, so keys rotate) in every zone after raw and travel as keyed
HMAC-SHA256 pseudonyms for joins. Raw files use envelope encryption: each file gets a random AES-256-GCM
data key, stored wrapped by MultiFernet in the file header. Bulk data then streams at AES-GCM speed and key
rotation only re-wraps one small header per file (`shared/stack.md`: Fernet runs ~100 MB/s, AES-GCM > 1 GB/s).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import BinaryIO

import polars as pl
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RAW_MAGIC = b"RTVRAW1\n"
RAW_CHUNK = 1024 * 1024
PARALLEL_THRESHOLD = 50_000


class ProtectionError(Exception):
    """Keys are missing, malformed or cannot open the data."""


@dataclass(frozen=True)
class Keyring:
    """Fernet keys (newest first) for encryption, and a separate fixed key for pseudonyms."""

    fernet_keys: tuple[str, ...]
    pseudonym_key: str

    def __post_init__(self) -> None:
        if not self.fernet_keys:
            raise ProtectionError("no Fernet key configured")
        try:
            for key in self.fernet_keys:
                Fernet(key)
            if len(base64.urlsafe_b64decode(self.pseudonym_key)) < 32:
                raise ValueError
        except ValueError:
            raise ProtectionError("a configured key is malformed (expected url-safe base64, 32 bytes)") from None

    @classmethod
    def generate(cls) -> Keyring:
        """A fresh keyring."""
        return cls((Fernet.generate_key().decode(),), base64.urlsafe_b64encode(os.urandom(32)).decode())

    @property
    def fernet(self) -> MultiFernet:
        """MultiFernet over all keys: encrypts with the newest, decrypts with any."""
        return MultiFernet([Fernet(k) for k in self.fernet_keys])

    @property
    def pseudonym_secret(self) -> bytes:
        return base64.urlsafe_b64decode(self.pseudonym_key)

    def to_json(self) -> str:
        return json.dumps({"fernet_keys": list(self.fernet_keys), "pseudonym_key": self.pseudonym_key})

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            data = json.loads(text)
            return cls(tuple(data["fernet_keys"]), data["pseudonym_key"])
        except (ValueError, KeyError, TypeError):
            raise ProtectionError("key material is not valid JSON with fernet_keys and pseudonym_key") from None


def load_key_file(path: Path, *, create: bool) -> Keyring:
    """Read a key file; with `create`, write a fresh 0600 one when it does not exist."""
    if path.exists():
        return Keyring.from_json(path.read_text())
    if not create:
        raise ProtectionError(f"key file {path} does not exist; set RTV_FERNET_KEYS or create one with `rtv keys init`")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    keyring = Keyring.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keyring.to_json())
    return keyring


def write_key_file(path: Path, keyring: Keyring) -> None:
    """Replace a key file atomically, keeping mode 0600."""
    staging = path.with_name(path.name + ".new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keyring.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)


# ---- pseudonyms and id shapes ------------------------------------------------------------------------

def normalise_id(value: str) -> str:
    """Identifier as compared: surrounding space removed, upper case."""
    return value.strip().upper()


def pseudonym(keyring: Keyring, value: str) -> str:
    """Keyed HMAC-SHA256 pseudonym (32 hex chars) of a normalised identifier."""
    return hmac.digest(keyring.pseudonym_secret, normalise_id(value).encode(), "sha256")[:16].hex()


def pseudonymize(keyring: Keyring, values: pl.Series) -> pl.Series:
    """Pseudonyms for a column; nulls stay null."""
    secret = keyring.pseudonym_secret
    out = [
        None if v is None else hmac.digest(secret, v.strip().upper().encode(), "sha256")[:16].hex()
        for v in values.to_list()
    ]
    return pl.Series(values.name, out, dtype=pl.String)


def keyed_digest(keyring: Keyring, values: pl.Series) -> pl.Series:
    """Keyed digests of arbitrary strings (row identities, content hashes); nulls stay null."""
    secret = keyring.pseudonym_secret
    out = [None if v is None else hmac.digest(secret, v.encode(), "sha256")[:16].hex() for v in values.to_list()]
    return pl.Series(values.name, out, dtype=pl.String)


_LETTER = re.compile(r"[A-Z]")
_DIGIT = re.compile(r"[0-9]")


def id_shape(value: str | None) -> str | None:
    """The id with its district prefix kept and every other letter X and digit 9: checkable, not personal."""
    if value is None:
        return None
    text = normalise_id(value)
    head, tail = text[:3], text[3:]
    return head + _DIGIT.sub("9", _LETTER.sub("X", tail))


def mask_id(value: str | None) -> str | None:
    """What a person without PII rights sees instead of a household id."""
    shape = id_shape(value)
    return None if shape is None else shape.replace("X", "•").replace("9", "•")


# ---- field encryption ----------------------------------------------------------------------------------

_worker_fernet: MultiFernet | None = None


def _init_worker(keys: tuple[str, ...]) -> None:
    global _worker_fernet
    _worker_fernet = MultiFernet([Fernet(k) for k in keys])


def _encrypt_chunk(values: list[str | None]) -> list[str | None]:
    assert _worker_fernet is not None
    f = _worker_fernet
    return [None if v is None else f.encrypt(v.encode()).decode() for v in values]


def encrypt_values(keyring: Keyring, values: Sequence[str | None], *, workers: int | None = None) -> list[str | None]:
    """Fernet tokens for values (None stays None); large inputs spread over processes."""
    workers = workers or os.cpu_count() or 1
    if len(values) < PARALLEL_THRESHOLD or workers == 1:
        _init_worker(keyring.fernet_keys)
        return _encrypt_chunk(list(values))
    size = -(-len(values) // (workers * 4))
    chunks = [list(values[i : i + size]) for i in range(0, len(values), size)]
    # forkserver: forking a process that runs Prefect's threads can deadlock
    with ProcessPoolExecutor(workers, get_context("forkserver"), _init_worker, (keyring.fernet_keys,)) as pool:
        return [token for part in pool.map(_encrypt_chunk, chunks) for token in part]


def encrypt_column(keyring: Keyring, values: pl.Series, name: str) -> pl.Series:
    """An encrypted copy of a string column; repeated values (officers, devices) are encrypted once each."""
    distinct = values.drop_nulls().unique()
    if values.len() >= PARALLEL_THRESHOLD and distinct.len() < values.len() // 10:
        tokens = dict(zip(distinct.to_list(), encrypt_values(keyring, distinct.to_list()), strict=True))
        return values.replace_strict(tokens, default=None, return_dtype=pl.String).alias(name)
    return pl.Series(name, encrypt_values(keyring, values.to_list()), dtype=pl.String)


def decrypt_values(keyring: Keyring, tokens: Sequence[str | None]) -> list[str | None]:
    """Plain values from Fernet tokens; a tampered or foreign token raises ProtectionError."""
    f = keyring.fernet
    try:
        return [None if t is None else f.decrypt(t.encode()).decode() for t in tokens]
    except InvalidToken:
        raise ProtectionError("a token failed authentication: tampered, or encrypted under a retired key") from None


# ---- raw files: envelope encryption, streamed ----------------------------------------------------------

def _frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def encrypt_stream(keyring: Keyring, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Encrypt a stream of plaintext chunks; yields the encrypted file piece by piece."""
    data_key = AESGCM.generate_key(bit_length=256)
    aead = AESGCM(data_key)
    yield RAW_MAGIC + _frame(keyring.fernet.encrypt(data_key))
    index = 0
    pending = next(chunks, b"")
    while True:
        following = next(chunks, None)
        last = following is None
        nonce = struct.pack(">4xQ", index)
        yield _frame(aead.encrypt(nonce, pending, struct.pack(">QB", index, last)))
        if last:
            return
        pending, index = following, index + 1


def _read_frame(handle: BinaryIO) -> bytes | None:
    head = handle.read(4)
    if not head:
        return None
    if len(head) != 4:
        raise ProtectionError("encrypted raw file is truncated")
    (size,) = struct.unpack(">I", head)
    body = handle.read(size)
    if len(body) != size:
        raise ProtectionError("encrypted raw file is truncated")
    return body


def decrypt_stream(keyring: Keyring, handle: BinaryIO) -> Iterator[bytes]:
    """Plaintext chunks of an encrypted raw file; detects tampering, reordering and truncation."""
    if handle.read(len(RAW_MAGIC)) != RAW_MAGIC:
        raise ProtectionError("not an encrypted raw file")
    wrapped = _read_frame(handle)
    try:
        aead = AESGCM(keyring.fernet.decrypt(wrapped or b""))
    except InvalidToken:
        raise ProtectionError("raw file key cannot be unwrapped: tampered, or wrapped under a retired key") from None
    index, frame = 0, _read_frame(handle)
    if frame is None:
        raise ProtectionError("encrypted raw file is truncated")
    while frame is not None:
        following = _read_frame(handle)
        aad = struct.pack(">QB", index, following is None)
        try:
            yield aead.decrypt(struct.pack(">4xQ", index), frame, aad)
        except InvalidTag:
            # a wrong final flag means chunks were dropped from the end: truncation is tampering too
            raise ProtectionError("raw file chunk failed authentication (tampered or truncated)") from None
        frame, index = following, index + 1


def rewrap_header(keyring: Keyring, handle: BinaryIO) -> bytes:
    """The file's header with its data key re-wrapped under the newest key (for rotation)."""
    if handle.read(len(RAW_MAGIC)) != RAW_MAGIC:
        raise ProtectionError("not an encrypted raw file")
    wrapped = _read_frame(handle) or b""
    try:
        return RAW_MAGIC + _frame(keyring.fernet.rotate(wrapped))
    except InvalidToken:
        raise ProtectionError("raw file key cannot be unwrapped") from None
