"""Key rotation on every backend: old data reads after it, the old key goes, tampering is caught, it resumes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.ingest.identity import ENCRYPTED, PII_KEY
from tasks.platform.settings import Settings
from tasks.protection.protect import Keyring, ProtectionError, decrypt_stream, open_values
from tasks.runtime import Runtime, runtime_for

pytestmark = pytest.mark.usefixtures("prefect_server")


def _ingest_generated(tmp_path: Path, rows: int = 200, seed: int = 5) -> tuple[Runtime, str, Path]:
    from flows.ingest import ingest
    from tasks.ingest.generate import generate_households, write_households
    from tasks.ingest.landing import land

    path = write_households(
        generate_households(rows, seed=seed, bad_rate=0.1).frame, tmp_path / f"hh-{seed}.csv"
    )
    rt = runtime_for(Settings())
    landed = land(rt, path, source_name="rotation-test", door="cli", filename=path.name)
    report = ingest(landed.ingestion_id)
    assert report["status"] == "completed_with_quarantine"
    return rt, landed.ingestion_id, path


def _raw_sha(rt: Runtime, keyring: Keyring, ingestion_id: str) -> str:
    with rt.store.open(rt.catalog.get(ingestion_id).raw_key) as sealed:
        return hashlib.sha256(b"".join(decrypt_stream(keyring, sealed))).hexdigest()


def _household_ids(rt: Runtime, keyring: Keyring, zone: str) -> list[str | None]:
    values: list[str | None] = []
    for key in sorted(rt.store.list(zone)):
        frame = pl.read_parquet(rt.store.get(key))
        values += open_values(
            keyring, frame[PII_KEY].to_list(), frame[ENCRYPTED["household_id"]].to_list(), "household_id"
        )
    return values


def _snapshot(rt: Runtime, keyring: Keyring, ingestion_id: str) -> dict[str, Any]:
    return {
        "raw": _raw_sha(rt, keyring, ingestion_id),
        **{zone: _household_ids(rt, keyring, zone) for zone in ("validated", "quarantine", "processed")},
    }


def test_rotation_keeps_data_readable_retires_the_old_key_and_is_audited(
    storage_backend: Settings, tmp_path: Path
) -> None:
    rt, ingestion_id, path = _ingest_generated(tmp_path)
    old = rt.keyring
    before = _snapshot(rt, old, ingestion_id)
    assert before["raw"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(before["validated"]) > 100 and all(before["validated"])

    result = CliRunner().invoke(app, ["keys", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["objects"]["rotated"] >= 4 and summary["resumed"] is False  # raw + three zones at least

    key_file = Path(storage_backend.key_file)
    new = Keyring.from_json(key_file.read_text())
    assert len(new.fernet_keys) == 1 and new.fernet_keys[0] not in old.fernet_keys
    assert old.fernet_keys[0] not in key_file.read_text()  # the old key is gone, not just demoted
    assert new.pseudonym_key == old.pseudonym_key  # pseudonyms (join keys) are stable across rotations
    assert _snapshot(rt, new, ingestion_id) == before

    with pytest.raises(ProtectionError):  # nothing is left under the old key
        _household_ids(rt, old, "validated")
    with pytest.raises(ProtectionError):
        _raw_sha(rt, old, ingestion_id)

    audit = CliRunner().invoke(app, ["audit", "--action", "rotated", "--json"])
    assert audit.exit_code == 0, audit.output
    [event] = json.loads(audit.output)
    assert event["target"] == summary["new_key"] and event["detail"]["retired"] == summary["retired"]


def test_tampered_tokens_and_raw_bytes_are_rejected(rtv_env: Settings, tmp_path: Path) -> None:
    rt, ingestion_id, _ = _ingest_generated(tmp_path)
    assert CliRunner().invoke(app, ["keys", "rotate"]).exit_code == 0
    keyring = rt.keyring
    [key] = rt.store.list("validated")
    frame = pl.read_parquet(rt.store.get(key))
    tokens = frame[ENCRYPTED["household_id"]].to_list()
    token = tokens[0]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with pytest.raises(ProtectionError, match="failed authentication"):
        open_values(keyring, frame[PII_KEY].to_list()[:1], [flipped], "household_id")
    with pytest.raises(ProtectionError, match="failed authentication"):  # a token moved to another column
        open_values(keyring, frame[PII_KEY].to_list()[:1], tokens[:1], "officer_id")
    wrapped = frame[PII_KEY][0]
    with pytest.raises(ProtectionError, match="cannot be unwrapped"):
        open_values(keyring, [wrapped[:-8] + "AAAAAAA="], tokens[:1], "household_id")

    raw = rt.catalog.get(ingestion_id).raw_key
    sealed = bytearray(rt.store.get(raw))
    sealed[len(sealed) // 2] ^= 0x01
    rt.store.put(raw, bytes(sealed), overwrite=True)
    with pytest.raises(ProtectionError), rt.store.open(raw) as handle:
        b"".join(decrypt_stream(keyring, handle))


def test_an_interrupted_rotation_resumes_and_completes(
    rtv_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.workflows.rotation as rotation

    rt, ingestion_id, _ = _ingest_generated(tmp_path, seed=6)
    _ingest_generated(tmp_path, seed=7)
    old = rt.keyring
    before = _snapshot(rt, old, ingestion_id)
    real_rotate = rotation.rotate_object
    calls = {"n": 0}

    def dies_on_the_third_object(store: Any, key: str, keyring: Keyring) -> str:
        calls["n"] += 1
        if calls["n"] == 3:  # the process "dies" between two objects (each object is replaced atomically)
            raise KeyboardInterrupt
        return real_rotate(store, key, keyring)

    monkeypatch.setattr(rotation, "rotate_object", dies_on_the_third_object)
    with pytest.raises(KeyboardInterrupt):
        rotation.rotate_keys(rt.store, rt.keys.store)
    half = rt.keyring
    assert len(half.fernet_keys) == 2 and half.fernet_keys[1] == old.fernet_keys[0]  # [new, old]: both read
    assert _snapshot(rt, half, ingestion_id) == before  # mid-rotation, everything still reads

    monkeypatch.setattr(rotation, "rotate_object", real_rotate)
    result = CliRunner().invoke(app, ["keys", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["resumed"] is True and summary["objects"]["current"] == 2  # the two done before the kill
    final = rt.keyring
    assert final.fernet_keys == half.fernet_keys[:1]  # the same new key: resuming adds no third key
    assert _snapshot(rt, final, ingestion_id) == before
    stale = [
        k
        for k in rotation.keyed_objects(rt.store)
        if rotation.is_current(rt.store, k, rotation.Fernet(final.fernet_keys[0])) is False
    ]
    assert stale == []


def test_keys_in_a_prefect_secret_block_rotate_in_the_block(
    rtv_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uuid import uuid4

    from prefect.blocks.system import Secret

    block = f"rtv-keys-{uuid4().hex[:8]}"
    first = Keyring.generate()
    Secret(value=json.loads(first.to_json())).save(block)
    monkeypatch.setenv("RTV_KEY_SECRET_BLOCK", block)
    monkeypatch.setenv("RTV_KEY_FILE", str(tmp_path / "must-not-be-created.json"))
    rt, ingestion_id, _ = _ingest_generated(tmp_path)
    before = _snapshot(rt, first, ingestion_id)

    status = CliRunner().invoke(app, ["keys", "status"])
    assert status.exit_code == 0 and block in status.output and first.fernet_keys[0] not in status.output
    assert CliRunner().invoke(app, ["keys", "rotate"]).exit_code == 0
    stored = Keyring.from_json(json.dumps(Secret.load(block).get()))
    assert len(stored.fernet_keys) == 1 and stored.fernet_keys != first.fernet_keys
    assert _snapshot(rt, stored, ingestion_id) == before
    assert not (tmp_path / "must-not-be-created.json").exists()


def test_keys_from_the_environment_rotate_by_listing_the_new_key_first(
    rtv_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    first = Keyring.generate()
    monkeypatch.setenv("RTV_FERNET_KEYS", first.fernet_keys[0])
    monkeypatch.setenv("RTV_PSEUDONYM_KEY", first.pseudonym_key)
    rt, ingestion_id, _ = _ingest_generated(tmp_path)
    before = _snapshot(rt, first, ingestion_id)

    refused = CliRunner().invoke(app, ["keys", "rotate"])
    assert refused.exit_code == 1 and "put the new key first" in refused.output

    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("RTV_FERNET_KEYS", f"{new_key},{first.fernet_keys[0]}")
    done = CliRunner().invoke(app, ["keys", "rotate"])
    assert done.exit_code == 0, done.output
    assert "remove the other keys" in done.output
    only_new = Keyring((new_key,), first.pseudonym_key)
    assert _snapshot(runtime_for(Settings()), only_new, ingestion_id) == before


def test_keys_init_writes_a_private_key_file_once(rtv_env: Settings) -> None:
    created = CliRunner().invoke(app, ["keys", "init"])
    assert created.exit_code == 0, created.output
    path = Path(rtv_env.key_file)
    assert path.stat().st_mode & 0o777 == 0o600 and len(Keyring.from_json(path.read_text()).fernet_keys) == 1
    again = CliRunner().invoke(app, ["keys", "init"])
    assert again.exit_code == 1 and "exists already" in again.output
    lines = CliRunner().invoke(app, ["keys", "init", "--print-env"]).output.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["RTV_FERNET_KEYS", "RTV_PSEUDONYM_KEY"]


def test_audit_command_filters_by_date_and_explains_bad_input(rtv_env: Settings) -> None:
    from tasks.protection import audit

    audit.record(runtime_for(rtv_env).catalog, "clerk-2", "exported", "households", {"rows": 3})
    listed = CliRunner().invoke(app, ["audit", "--since", "2020-01-01", "--json"])
    assert listed.exit_code == 0 and [e["actor"] for e in json.loads(listed.output)] == ["clerk-2"]
    future = CliRunner().invoke(app, ["audit", "--since", "2999-01-01"])
    assert future.exit_code == 0 and "no audit events match" in future.output
    table = CliRunner().invoke(app, ["audit"])
    assert "clerk-2" in table.output and "exported" in table.output
    bad = CliRunner().invoke(app, ["audit", "--since", "last tuesday"])
    assert bad.exit_code == 1 and "--since takes a date" in bad.output
