"""One behaviour suite for every object store (local, S3 on moto, Azure Blob on Azurite), then the ingest on each."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tasks.platform.cloud_storage import AzureStore, ReplicatedStore, S3Store
from tasks.platform.storage import LocalStore, ObjectExists, ObjectStore
from tests.conftest import BUCKET, CONTAINER, use_storage

MB = 1024 * 1024
COUNTS = ("rows_received", "rows_accepted", "rows_quarantined", "rows_duplicate")

MakeStore = Callable[..., ObjectStore]


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """`make_store(kind, folder=None)`: a store of that kind; by default under a folder no other test uses."""

    def make(kind: str, folder: str | None = None) -> ObjectStore:
        folder = f"t-{uuid4().hex[:12]}" if folder is None else folder
        if kind == "local":
            return LocalStore(tmp_path / "stores" / (folder or "root"))
        factory = request.getfixturevalue("s3_bucket" if kind == "s3" else "azure_container")
        return factory(folder)

    return make


@pytest.fixture(params=["local", "s3", "azure"])
def store(request: pytest.FixtureRequest, make_store: MakeStore) -> ObjectStore:
    return make_store(request.param)


def test_put_get_exists_size_list_delete(store: ObjectStore) -> None:
    store.put("validated/ing-1/part-00001.parquet", b"second")
    store.put("validated/ing-1/part-00000.parquet", b"first")
    store.put("validated-old/ing-0/part-00000.parquet", b"elsewhere")
    store.put("reports/ing-1/import_report.json", b"{}")
    assert store.get("validated/ing-1/part-00000.parquet") == b"first"
    assert store.exists("validated/ing-1/part-00001.parquet") and not store.exists(
        "validated/ing-1/part-00002"
    )
    assert store.size("validated/ing-1/part-00001.parquet") == 6
    assert store.list("validated") == [
        "validated/ing-1/part-00000.parquet",
        "validated/ing-1/part-00001.parquet",
    ]
    assert store.list("validated/ing-1/") == store.list("validated")
    assert store.list("reports/ing-1/import_report.json") == ["reports/ing-1/import_report.json"]
    assert store.list() == sorted(store.list())
    assert len(store.list()) == 4 and store.list("nothing") == []
    store.delete("validated/ing-1/part-00000.parquet")
    store.delete("validated/ing-1/part-00000.parquet")  # absent: no error
    assert store.list("validated") == ["validated/ing-1/part-00001.parquet"]


def test_writes_never_clobber_unless_asked(store: ObjectStore, tmp_path: Path) -> None:
    store.put("raw/a.enc", b"one")
    with pytest.raises(ObjectExists):
        store.put("raw/a.enc", b"two")
    source = tmp_path / "b.bin"
    source.write_bytes(b"file")
    with pytest.raises(ObjectExists):
        store.put_file("raw/a.enc", source)
    assert store.get("raw/a.enc") == b"one"
    store.put("raw/a.enc", b"three", overwrite=True)
    assert store.get("raw/a.enc") == b"three"
    store.put_file("raw/a.enc", source, overwrite=True)
    assert store.get("raw/a.enc") == b"file"


def test_large_file_goes_up_in_parts_and_streams_back(store: ObjectStore, tmp_path: Path) -> None:
    source = _random_file(tmp_path / "big.bin", 20)
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    store.put_file("raw/big.enc", source)
    with pytest.raises(ObjectExists):
        store.put_file("raw/big.enc", source)  # the multipart / block-list commit is conditional too
    assert store.size("raw/big.enc") == 20 * MB
    assert _parts(store, "raw/big.enc") == (
        1 if isinstance(store, LocalStore) else 3
    )  # 8 MB parts in the cloud
    digest, peak = _stream(store, "raw/big.enc", source.read_bytes()[:7])
    assert digest == expected
    copy = tmp_path / "copy.bin"
    store.get_to_file("raw/big.enc", copy)
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == expected

    # Streaming means the memory held does not grow with the object: four times the bytes, the same peak.
    store.put_file("raw/bigger.enc", _random_file(tmp_path / "bigger.bin", 80))
    _, bigger_peak = _stream(store, "raw/bigger.enc")
    assert bigger_peak < peak + 4 * MB, (
        f"open() held {peak / MB:.1f} MB for 20 MB, {bigger_peak / MB:.1f} for 80"
    )


def _random_file(path: Path, megabytes: int) -> Path:
    with path.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(MB))
    return path


def _stream(store: ObjectStore, key: str, head: bytes = b"") -> tuple[str, int]:
    """The sha256 of an object read through open() in small pieces, and the peak Python memory meanwhile."""
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        with store.open(key) as handle:
            if head:
                assert handle.read(len(head)) == head  # exact-size reads, as the decryptor does
                digest.update(head)
            while chunk := handle.read(256 * 1024):
                digest.update(chunk)
        return digest.hexdigest(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _parts(store: ObjectStore, key: str) -> int:
    """How many parts the object was uploaded in (1 for a single PUT)."""
    if isinstance(store, S3Store):
        etag = store._client.head_object(Bucket=store.bucket_name, Key=store._key(key))["ETag"].strip('"')
        return int(etag.split("-")[1]) if "-" in etag else 1
    if isinstance(store, AzureStore):
        committed, _ = store._container.get_blob_client(store._blob(key)).get_block_list("committed")
        return max(len(committed), 1)
    return 1


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../b", "", "a//b", "a\\b", "raw/./x"])
def test_keys_cannot_escape(store: ObjectStore, key: str, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    for attempt in (
        lambda: store.put(key, b"x"),
        lambda: store.put_file(key, tmp_path / "f"),
        lambda: store.get(key),
        lambda: store.open(key),
        lambda: store.size(key),
    ):
        with pytest.raises(ValueError, match="invalid object key"):
            attempt()


def test_missing_key_is_file_not_found(store: ObjectStore, tmp_path: Path) -> None:
    for attempt in (
        lambda: store.get("raw/none.enc"),
        lambda: store.open("raw/none.enc"),
        lambda: store.size("raw/none.enc"),
        lambda: store.get_to_file("raw/none.enc", tmp_path / "o"),
    ):
        with pytest.raises(FileNotFoundError):
            attempt()
    assert not store.exists("raw/none.enc")
    assert not (tmp_path / "o").exists()


def test_uri_names_the_object(store: ObjectStore) -> None:
    uri = store.uri("reports/ing-1/import_report.json")
    if isinstance(store, S3Store):
        assert uri == f"s3://{BUCKET}/{store.folder}reports/ing-1/import_report.json"
    elif isinstance(store, AzureStore):
        assert uri.startswith("http://127.0.0.1:") or uri.startswith("https://")
        assert uri.endswith(f"/{CONTAINER}/{store.folder}reports/ing-1/import_report.json")
    else:
        assert uri.startswith("file:///") and uri.endswith("/reports/ing-1/import_report.json")


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_folder_prefix_isolates_stores_in_one_bucket(kind: str, make_store: MakeStore) -> None:
    run = uuid4().hex[:8]
    one, two = make_store(kind, f"{run}/one"), make_store(kind, f"{run}/two/")
    one.put("raw/x.enc", b"one")
    two.put("raw/x.enc", b"two")  # same key, different folder: no clash
    assert (one.get("raw/x.enc"), two.get("raw/x.enc")) == (b"one", b"two")
    assert one.list() == two.list() == ["raw/x.enc"]
    two.delete("raw/x.enc")
    assert one.exists("raw/x.enc") and not two.exists("raw/x.enc")
    whole = make_store(kind, "")  # the bucket root sees both folders as plain keys
    assert whole.list(run) == [f"{run}/one/raw/x.enc"]


@pytest.mark.parametrize(("primary", "backup"), [("local", "s3"), ("s3", "azure"), ("azure", "local")])
def test_replicated_store_writes_both_and_reads_the_backup(
    primary: str, backup: str, make_store: MakeStore, tmp_path: Path
) -> None:
    first, second = make_store(primary), make_store(backup)
    both = ReplicatedStore(first, second)
    both.put("validated/ing-1/part-00000.parquet", b"rows")
    source = tmp_path / "raw.bin"
    source.write_bytes(b"raw bytes")
    both.put_file("raw/ing-1.enc", source)
    for store in (first, second):
        assert store.get("validated/ing-1/part-00000.parquet") == b"rows"
        assert store.get("raw/ing-1.enc") == b"raw bytes"
    with pytest.raises(ObjectExists):
        both.put("validated/ing-1/part-00000.parquet", b"other")

    first.delete("raw/ing-1.enc")  # the primary lost an object
    assert both.exists("raw/ing-1.enc") and both.get("raw/ing-1.enc") == b"raw bytes"
    with both.open("raw/ing-1.enc") as handle:
        assert handle.read() == b"raw bytes"
    assert both.size("raw/ing-1.enc") == 9
    assert both.list("raw") == ["raw/ing-1.enc"]
    assert both.uri("validated/ing-1/part-00000.parquet") == first.uri("validated/ing-1/part-00000.parquet")
    both.delete("validated/ing-1/part-00000.parquet")
    assert not first.exists("validated/ing-1/part-00000.parquet")
    assert not second.exists("validated/ing-1/part-00000.parquet")


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_runtime_builds_the_store_and_a_saved_block_wins(
    kind: str, request: pytest.FixtureRequest, rtv_env: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    folder = f"block-{uuid4().hex[:12]}"
    name = f"rtv-test-{kind}-{uuid4().hex[:8]}"
    monkeypatch.setenv("RTV_STORAGE", kind)
    monkeypatch.setenv("RTV_BACKUP_STORAGE", "local")
    if kind == "s3":
        request.getfixturevalue("s3_bucket")(folder).bucket.save(name)
        monkeypatch.setenv("RTV_S3_BLOCK", name)
        monkeypatch.setenv("RTV_S3_BUCKET", "not-this-bucket")
    else:
        request.getfixturevalue("azure_container")(folder).block.save(name)
        monkeypatch.setenv("RTV_AZURE_BLOCK", name)
        monkeypatch.setenv("RTV_AZURE_CONTAINER", "not-this-container")
    store = runtime_for(Settings()).store
    assert isinstance(store, ReplicatedStore) and store.name == f"{kind}+local"
    assert isinstance(store.backup, LocalStore)
    assert isinstance(store.primary, S3Store | AzureStore) and store.primary.folder == f"{folder}/"
    store.put("raw/x.enc", b"x")
    assert store.primary.get("raw/x.enc") == store.backup.get("raw/x.enc") == b"x"
    assert store.primary.uri("raw/x.enc").endswith(f"{folder}/raw/x.enc")


def test_backup_must_be_another_store(rtv_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    monkeypatch.setenv("RTV_BACKUP_STORAGE", "local")
    with pytest.raises(ValueError, match="different store"):
        _ = runtime_for(Settings()).store


# ---- the ingest flow on each cloud store ---------------------------------------------------------------------


def _ingest(path: Path) -> tuple[dict[str, Any], ObjectStore]:
    from flows.ingest import ingest
    from tasks.ingest.landing import land
    from tasks.platform.settings import Settings
    from tasks.runtime import runtime_for

    rt = runtime_for(Settings())
    landed = land(rt, path, source_name="cloud-test", door="cli", filename=path.name)
    assert not landed.is_duplicate
    return ingest(landed.ingestion_id), rt.store


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_ingest_on_cloud_storage_matches_local(
    kind: str,
    request: pytest.FixtureRequest,
    rtv_env: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tasks.ingest.generate import generate_households, write_households

    path = write_households(
        generate_households(300, seed=11, bad_rate=0.1).frame, tmp_path / "households.csv"
    )
    local, _ = _ingest(path)

    monkeypatch.setenv(
        "RTV_DATA_DIR", str(tmp_path / f"data-{kind}")
    )  # a fresh catalog: not a duplicate file
    use_storage(kind, request, monkeypatch)
    report, store = _ingest(path)

    assert store.name == kind
    assert {k: report[k] for k in COUNTS} == {k: local[k] for k in COUNTS}
    assert report["status"] == local["status"] == "completed_with_quarantine"
    assert report["quarantine_reasons"] == local["quarantine_reasons"]
    ingestion_id = report["ingestion_id"]
    keys = store.list()
    for zone in ("validated", "quarantine", "processed"):
        assert f"{zone}/{ingestion_id}/part-00000.parquet" in keys, zone
    assert f"raw/{ingestion_id}.enc" in keys
    assert f"reports/{ingestion_id}/import_report.json" in keys
    assert f"reports/{ingestion_id}/data_docs/index.html" in keys
    assert report["zones"]["validated"] == store.uri(f"validated/{ingestion_id}")
    assert report["data_docs"] == store.uri(f"reports/{ingestion_id}/data_docs/index.html")
    assert not [
        p for p in (tmp_path / f"data-{kind}").rglob("*") if p.is_file() and p.suffix in (".enc", ".parquet")
    ]
