"""Keys, pseudonyms, field encryption and raw-file envelope encryption."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import polars as pl
import pytest
from cryptography.fernet import Fernet

from tasks.protection import protect
from tasks.protection.protect import Keyring, ProtectionError


def test_pseudonym_is_keyed_stable_and_case_insensitive() -> None:
    a, b = Keyring.generate(), Keyring.generate()
    assert protect.pseudonym(a, "kan-kih-mac-k4633 ") == protect.pseudonym(a, "KAN-KIH-MAC-K4633")
    assert protect.pseudonym(a, "KAN-KIH-MAC-K4633") != protect.pseudonym(b, "KAN-KIH-MAC-K4633")
    assert len(protect.pseudonym(a, "X")) == 32


def test_sealed_columns_round_trip_and_detect_tampering() -> None:
    keys = Keyring.generate()
    values = pl.Series("id", ["MIT-NYA-ANN-M1", None, "RUK-KAB-JOH-R2"])
    wrapped, sealed = protect.seal_columns(keys, {"household_id": values})
    tokens = sealed["household_id"].to_list()
    assert tokens[1] is None and not any("MIT" in t for t in tokens if t)
    assert protect.open_values(keys, [wrapped] * 3, tokens, "household_id") == values.to_list()
    flipped = tokens[0][:-4] + ("AAAA" if tokens[0][-4:] != "AAAA" else "BBBB")
    with pytest.raises(ProtectionError):
        protect.open_values(keys, [wrapped], [flipped], "household_id")
    with pytest.raises(ProtectionError):  # a token moved to another column does not authenticate
        protect.open_values(keys, [wrapped], tokens[:1], "officer_id")
    with pytest.raises(ProtectionError):  # another keyring cannot unwrap the data key
        protect.open_values(Keyring.generate(), [wrapped], tokens[:1], "household_id")


def test_repeated_values_share_a_token_within_a_batch_only() -> None:
    keys = Keyring.generate()
    officers = pl.Series("officer", ["FO-001", "FO-002"] * 500)
    wrapped, sealed = protect.seal_columns(keys, {"officer_id": officers})
    assert sealed["officer_id"].n_unique() == 2
    assert protect.open_values(keys, [wrapped] * 2, sealed["officer_id"][:2].to_list(), "officer_id") == [
        "FO-001",
        "FO-002",
    ]
    _, again = protect.seal_columns(keys, {"officer_id": officers})
    assert again["officer_id"][0] != sealed["officer_id"][0]  # a fresh data key per batch


def test_data_keys_survive_a_new_fernet_key_and_rewrap() -> None:
    old = Keyring.generate()
    wrapped, sealed = protect.seal_columns(old, {"household_id": pl.Series(["RUB-KAC-F-12"])})
    rotated = Keyring((Fernet.generate_key().decode(), *old.fernet_keys), old.pseudonym_key)
    token = sealed["household_id"].to_list()
    assert protect.open_values(rotated, [wrapped], token, "household_id") == ["RUB-KAC-F-12"]
    rewrapped = protect.rewrap_key(rotated, wrapped)
    new_only = Keyring(rotated.fernet_keys[:1], old.pseudonym_key)
    assert protect.open_values(new_only, [rewrapped], token, "household_id") == ["RUB-KAC-F-12"]
    with pytest.raises(ProtectionError):
        protect.open_values(new_only, [wrapped], token, "household_id")


def test_vectorised_pseudonyms_match_the_single_value_function() -> None:
    keys = Keyring.generate()
    values = pl.Series("id", ["kan-kih-mac-k4633 ", "MIT-NYA-ANN-M1", None])
    assert protect.pseudonymize(keys, values).to_list() == [
        protect.pseudonym(keys, "KAN-KIH-MAC-K4633"),
        protect.pseudonym(keys, "MIT-NYA-ANN-M1"),
        None,
    ]


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
