"""Keys, pseudonyms, field encryption and raw-file envelope encryption."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import polars as pl
import pytest
from cryptography.fernet import Fernet

from tasks import protect
from tasks.protect import Keyring, ProtectionError


def test_pseudonym_is_keyed_stable_and_case_insensitive() -> None:
    a, b = Keyring.generate(), Keyring.generate()
    assert protect.pseudonym(a, "kan-kih-mac-k4633 ") == protect.pseudonym(a, "KAN-KIH-MAC-K4633")
    assert protect.pseudonym(a, "KAN-KIH-MAC-K4633") != protect.pseudonym(b, "KAN-KIH-MAC-K4633")
    assert len(protect.pseudonym(a, "X")) == 32


def test_field_encryption_round_trips_and_detects_tampering() -> None:
    keys = Keyring.generate()
    tokens = protect.encrypt_values(keys, ["MIT-NYA-ANN-M1", None])
    assert tokens[1] is None and "MIT" not in tokens[0]
    assert protect.decrypt_values(keys, tokens) == ["MIT-NYA-ANN-M1", None]
    tampered = tokens[0][:-6] + ("A" if tokens[0][-6] != "A" else "B") + tokens[0][-5:]
    with pytest.raises(ProtectionError):
        protect.decrypt_values(keys, [tampered])
    with pytest.raises(ProtectionError):
        protect.decrypt_values(Keyring.generate(), tokens[:1])


def test_parallel_encryption_of_a_large_column_decrypts() -> None:
    keys = Keyring.generate()
    values = pl.Series("id", [f"RUK-KAB-JOH-R{i}" for i in range(protect.PARALLEL_THRESHOLD + 10)])
    tokens = protect.encrypt_column(keys, values, "id_enc")
    assert tokens.len() == values.len()
    sample = [0, 1, protect.PARALLEL_THRESHOLD + 9]
    assert protect.decrypt_values(keys, [tokens[i] for i in sample]) == [values[i] for i in sample]


def test_repeated_values_are_encrypted_once_each() -> None:
    keys = Keyring.generate()
    values = pl.Series("officer", ["FO-001", "FO-002"] * (protect.PARALLEL_THRESHOLD // 2 + 1))
    tokens = protect.encrypt_column(keys, values, "officer_enc")
    assert tokens.n_unique() == 2
    assert protect.decrypt_values(keys, tokens[:2].to_list()) == ["FO-001", "FO-002"]


def test_multifernet_reads_old_tokens_after_a_new_key_is_added() -> None:
    old = Keyring.generate()
    token = protect.encrypt_values(old, ["RUB-KAC-F-12"])
    rotated = Keyring((Fernet.generate_key().decode(), *old.fernet_keys), old.pseudonym_key)
    assert protect.decrypt_values(rotated, token) == ["RUB-KAC-F-12"]


def _encrypt(keys: Keyring, data: bytes) -> bytes:
    chunks = iter([data[i : i + protect.RAW_CHUNK] for i in range(0, len(data), protect.RAW_CHUNK)])
    return b"".join(protect.encrypt_stream(keys, chunks))


def test_raw_envelope_round_trip_tamper_and_truncation() -> None:
    keys = Keyring.generate()
    data = os.urandom(2 * protect.RAW_CHUNK + 17)
    sealed = _encrypt(keys, data)
    assert b"".join(protect.decrypt_stream(keys, io.BytesIO(sealed))) == data
    flipped = bytearray(sealed)
    flipped[-40] ^= 1
    with pytest.raises(ProtectionError):
        b"".join(protect.decrypt_stream(keys, io.BytesIO(bytes(flipped))))
    final_frame = 4 + 17 + 16  # length prefix + the 17-byte tail + GCM tag
    with pytest.raises(ProtectionError):  # dropping the whole final chunk leaves a chunk not marked final
        b"".join(protect.decrypt_stream(keys, io.BytesIO(sealed[:-final_frame])))


def test_rewrapped_header_opens_with_new_key_only() -> None:
    old = Keyring.generate()
    sealed = _encrypt(old, b"hello survey")
    new_key = Fernet.generate_key().decode()
    both = Keyring((new_key, *old.fernet_keys), old.pseudonym_key)
    header = protect.rewrap_header(both, io.BytesIO(sealed))
    body_start = len(protect.RAW_MAGIC) + 4 + int.from_bytes(sealed[8:12], "big")
    rewrapped = header + sealed[body_start:]
    new_only = Keyring((new_key,), old.pseudonym_key)
    assert b"".join(protect.decrypt_stream(new_only, io.BytesIO(rewrapped))) == b"hello survey"


def test_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "keys.json"
    first = protect.load_key_file(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert protect.load_key_file(path, create=False) == first
    with pytest.raises(ProtectionError):
        protect.load_key_file(tmp_path / "missing.json", create=False)


def test_id_shape_and_mask_hide_names() -> None:
    assert protect.id_shape("Kan-kih-mac-k4633") == "KAN-XXX-XXX-X9999"
    assert protect.id_shape("MIT-ORU-TU,-M10944") == "MIT-XXX-XX,-X99999"
    assert protect.mask_id("RUB-KAC-F-123") == "RUB-•••-•-•••"
