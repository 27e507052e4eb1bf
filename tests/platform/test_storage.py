"""Local object store: atomic, never clobbers, no escaping its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.platform.storage import LocalStore, ObjectExists


def test_put_get_list_and_no_clobber(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("validated/ing-1/part-00000.parquet", b"one")
    with pytest.raises(ObjectExists):
        store.put("validated/ing-1/part-00000.parquet", b"two")
    assert store.get("validated/ing-1/part-00000.parquet") == b"one"
    store.put("validated/ing-1/part-00000.parquet", b"three", overwrite=True)
    assert store.get("validated/ing-1/part-00000.parquet") == b"three"
    assert store.list("validated") == ["validated/ing-1/part-00000.parquet"]
    assert store.size("validated/ing-1/part-00000.parquet") == 5
    assert not list(tmp_path.rglob(".staging-*"))


def test_put_file_and_delete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "zones")
    source = tmp_path / "x.bin"
    source.write_bytes(b"abc" * 1000)
    store.put_file("raw/a.enc", source)
    assert store.get("raw/a.enc") == source.read_bytes()
    store.delete("raw/a.enc")
    assert not store.exists("raw/a.enc")


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../b", "", "a//b", "a\\b"])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        LocalStore(tmp_path).put(key, b"x")
