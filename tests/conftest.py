"""Shared fixtures: an isolated data dir per test, the real RTV file, one Prefect test server per session."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from tasks.platform.processes import NotReady, free_port, running

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

ROOT = Path(__file__).resolve().parents[1]
REAL_FILE = Path(
    os.environ.get("RTV_REAL_DATA", ROOT.parent / "shared/data/rtv/DataScientist_01_Assessment.csv")
)


# A test that uses one of these fixtures starts or needs a server process (Prefect, PostgreSQL, moto, Azurite):
# it is marked `server` and left out of `make check`, the fast lane.
SERVER_FIXTURES = frozenset(
    {
        "prefect_server",
        "moto_endpoint",
        "azurite_connection_string",
        "s3_bucket",
        "azure_container",
        "storage_backend",
        "pg_url",
    }
)
SERVER_BACKENDS = frozenset({"s3", "azure", "postgres"})  # parameters that select an emulator or PostgreSQL


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a server process, by the fixtures it uses or its `postgres` marker."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        backends = {str(v) for v in callspec.params.values()} if callspec else set()
        if fixtures & SERVER_FIXTURES or backends & SERVER_BACKENDS or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def real_csv() -> Path:
    """The real RTV assessment file (read-only; never copied into the repository)."""
    if not REAL_FILE.is_file():
        pytest.fail(f"the real RTV file is expected at {REAL_FILE} (CI provides it; set RTV_REAL_DATA)")
    return REAL_FILE


@pytest.fixture
def rtv_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """Settings pointing at a fresh data dir and key file; flows read the same values from the environment."""
    for name in list(os.environ):
        if name.startswith("RTV_") and name != "RTV_REAL_DATA":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RTV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTV_KEY_FILE", str(tmp_path / "keys.json"))
    from tasks.platform.settings import Settings

    return Settings()


@pytest.fixture
def rt(rtv_env: object) -> object:
    """The Runtime for `rtv_env`."""
    from tasks.runtime import runtime_for

    return runtime_for(rtv_env)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect API for the whole session (it takes ~25 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


# ---- PostgreSQL (running on 127.0.0.1:5432 with trust auth; .ci/services.sh starts it if it is down) --------

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throw-away PostgreSQL database for this module."""
    name = f"rtv_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


# ---- storage emulators (the tests start them; nothing has to be running beforehand) -------------------------

AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
    "K1SZFPTOtr/KBHBeksoGMGw=="
)  # Azurite's fixed, public development key


@contextlib.contextmanager
def _service(name: str, command: list[str], url: str, log: Path, timeout: float = 60.0) -> Iterator[None]:
    """Run an emulator until the block ends; fail the session (never skip) if it does not answer HTTP."""
    with contextlib.ExitStack() as stack:
        try:
            # any HTTP status is an answer: Azurite refuses an unsigned request but is up
            stack.enter_context(
                running(name, command, log, ready_url=url, timeout=timeout, cwd=ROOT, any_status=True)
            )
        except OSError as error:
            pytest.fail(f"{name} could not be started ({' '.join(command)}): {error}")
        except NotReady as error:
            pytest.fail(f"{name} did not come up: {error}; its log ({log}):\n{error.log_tail()}")
        yield


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3 endpoint: `RTV_TEST_S3_ENDPOINT`, or a moto_server started for the session."""
    if os.environ.get("RTV_TEST_S3_ENDPOINT"):
        yield os.environ["RTV_TEST_S3_ENDPOINT"]
        return
    moto = Path(sys.executable).parent / "moto_server"  # .venv/bin, next to the interpreter running pytest
    if not moto.exists():
        pytest.fail(f"{moto} is missing: run `make install` (moto[server] is in the dev extras)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _service(
        "moto_server",
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        url,
        tmp_path_factory.mktemp("moto") / "moto.log",
    ):
        yield url


@pytest.fixture(scope="session")
def azurite_connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An Azure Blob Storage connection string: `RTV_TEST_AZURE_CONNECTION_STRING`, or Azurite for the session."""
    if os.environ.get("RTV_TEST_AZURE_CONNECTION_STRING"):
        yield os.environ["RTV_TEST_AZURE_CONNECTION_STRING"]
        return
    import shutil

    azurite = ROOT / "node_modules/.bin/azurite-blob"
    if not azurite.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                "Azurite is not installed and npm is not on PATH: install Node.js, then `make install`"
            )
        # `npm ci` installs exactly the Azurite version pinned in package-lock.json
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode != 0 or not azurite.exists():
            pytest.fail(f"`npm ci` could not install Azurite:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    port = free_port()
    folder = tmp_path_factory.mktemp("azurite")
    command = [
        str(azurite),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(folder),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ]
    with _service(
        "Azurite", command, f"http://127.0.0.1:{port}/devstoreaccount1?comp=list", folder / "azurite.log"
    ):
        yield (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )


# ---- object stores on the emulators, and the storage backend a test runs on ------------------------------

BUCKET = "rtv-test-zones"
CONTAINER = "rtv-test-zones"


@pytest.fixture(scope="session")
def s3_bucket(moto_endpoint: str) -> Callable[[str], object]:
    """Builds S3 stores over one test bucket, each under the folder it is given."""
    from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

    from tasks.platform.cloud_storage import S3Store

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # moto takes any credentials
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    credentials = AwsCredentials(
        region_name="us-east-1", aws_client_parameters=AwsClientParameters(endpoint_url=moto_endpoint)
    )
    client = credentials.get_s3_client()
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    return lambda folder: S3Store(S3Bucket(bucket_name=BUCKET, bucket_folder=folder, credentials=credentials))


@pytest.fixture(scope="session")
def azure_container(azurite_connection_string: str) -> Callable[[str], object]:
    """Builds Azure stores over one test container, each under the folder it is given."""
    from azure.storage.blob import BlobServiceClient
    from prefect_azure import AzureBlobStorageContainer, AzureBlobStorageCredentials

    from tasks.platform.cloud_storage import AzureStore

    service = BlobServiceClient.from_connection_string(azurite_connection_string)
    if not service.get_container_client(CONTAINER).exists():
        service.create_container(CONTAINER)
    credentials = AzureBlobStorageCredentials(connection_string=azurite_connection_string)
    return lambda folder: AzureStore(
        AzureBlobStorageContainer(
            container_name=CONTAINER, credentials=credentials, base_folder=folder or None
        )
    )


def use_storage(kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point RTV_STORAGE at `kind` (local, s3 on moto, azure on Azurite) under a fresh folder."""
    folder = f"t-{uuid4().hex[:12]}"
    monkeypatch.setenv("RTV_STORAGE", kind)
    if kind == "s3":
        request.getfixturevalue("s3_bucket")  # creates the bucket
        monkeypatch.setenv("RTV_S3_ENDPOINT_URL", request.getfixturevalue("moto_endpoint"))
        monkeypatch.setenv("RTV_S3_BUCKET", BUCKET)
        monkeypatch.setenv("RTV_S3_PREFIX", folder)
    elif kind == "azure":
        request.getfixturevalue("azure_container")
        monkeypatch.setenv(
            "RTV_AZURE_CONNECTION_STRING", request.getfixturevalue("azurite_connection_string")
        )
        monkeypatch.setenv("RTV_AZURE_CONTAINER", CONTAINER)
        monkeypatch.setenv("RTV_AZURE_PREFIX", folder)


@pytest.fixture(params=["local", "s3", "azure"])
def storage_backend(
    request: pytest.FixtureRequest, rtv_env: object, monkeypatch: pytest.MonkeyPatch
) -> object:
    """Settings for local zones, S3 (moto) or Azure Blob (Azurite), each under a fresh folder: one run per kind."""
    use_storage(request.param, request, monkeypatch)
    from tasks.platform.settings import Settings

    return Settings()
