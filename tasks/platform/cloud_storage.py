"""S3 and Azure Blob object stores behind `ObjectStore`, and a store that keeps a second copy of every object."""

from __future__ import annotations

import io
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypedDict, TypeVar, cast

from tasks.platform.settings import Settings
from tasks.platform.storage import ObjectExists, ObjectStore, check_key

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from prefect_aws import S3Bucket
    from prefect_azure import AzureBlobStorageContainer, AzureBlobStorageCredentials

PART_BYTES = 8 * 1024 * 1024  # files above this go up in parts of this size, a few at a time
PARALLEL_PARTS = 4
READ_BUFFER = 1024 * 1024
# The SDKs' own retries cover a dropped packet; the tasks' retries with exponential backoff cover an outage.
# Kept short so a dead endpoint fails a task in seconds (the SDK defaults wait minutes: Azure backs off from 15 s).
CONNECT_TIMEOUT_S, READ_TIMEOUT_S, SDK_ATTEMPTS = 5, 60, 3
_Block = TypeVar("_Block")


def _loaded(block: _Block | Coroutine[Any, Any, _Block]) -> _Block:
    """The block `Block.load` returned; Prefect hands out a coroutine instead only inside a running event loop."""
    if isinstance(block, Coroutine):
        block.close()  # never awaited: closed so Python does not warn about it
        raise RuntimeError("object store blocks must be loaded from synchronous code")
    return block


def _folder(prefix: str | None) -> str:
    """A folder prefix as `a/b/`, or empty."""
    cleaned = (prefix or "").strip("/")
    return f"{cleaned}/" if cleaned else ""


def _under(names: Iterable[str], folder: str, prefix: str) -> list[str]:
    """Keys (folder removed) equal to `prefix` or below it as a path, sorted, as LocalStore.list returns them."""
    stem = prefix.rstrip("/")
    keys = (name[len(folder) :] for name in names)
    return sorted(k for k in keys if not stem or k == stem or k.startswith(stem + "/"))


class _ReadStream(io.RawIOBase):
    """A raw binary stream over a `read(n)` function, for wrapping in io.BufferedReader."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# ---- S3 --------------------------------------------------------------------------------------------------


def _s3_client(credentials: Any) -> Any:
    """A boto3 S3 client of its own (prefect-aws caches and shares one; event hooks must not leak into it)."""
    from botocore.config import Config

    params = credentials.aws_client_parameters.get_params_override()
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        tcp_keepalive=True,
        retries={"max_attempts": SDK_ATTEMPTS, "mode": "standard"},
    )
    params["config"] = config.merge(params["config"]) if params.get("config") else config  # the block wins
    return credentials.get_boto3_session().client("s3", **params)


def _if_none_match(params: dict[str, Any], **_: Any) -> None:
    params.setdefault("IfNoneMatch", "*")


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """S3's refusals as the store's exceptions; network and permission errors propagate unchanged."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code in ("PreconditionFailed", "412"):
            raise ObjectExists(key) from error
        if code in ("NoSuchKey", "NotFound", "404"):
            raise FileNotFoundError(key) from error
        raise


class S3Store:
    """Objects in an S3 bucket, under the block's folder; writes are conditional PUTs, so they never clobber."""

    name = "s3"

    def __init__(self, bucket: S3Bucket) -> None:
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.bucket_name = bucket.bucket_name
        self.folder = _folder(bucket.bucket_folder)
        self._client = _s3_client(bucket.credentials)
        # boto3's managed transfer does not accept IfNoneMatch, so a second client adds it to the single PUT
        # and to CompleteMultipartUpload: the object appears only if no other one is there.
        self._create_only = _s3_client(bucket.credentials)
        for operation in ("PutObject", "CompleteMultipartUpload"):
            self._create_only.meta.events.register(f"before-parameter-build.s3.{operation}", _if_none_match)
        self._transfer = TransferConfig(
            multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=PARALLEL_PARTS
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        """The bucket of `RTV_S3_BLOCK`, or of the `RTV_S3_*` settings with credentials from boto3's chain."""
        from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

        if settings.s3_block:
            return cls(_loaded(S3Bucket.load(settings.s3_block)))
        credentials = AwsCredentials(
            region_name=settings.s3_region,
            aws_client_parameters=AwsClientParameters(endpoint_url=settings.s3_endpoint_url),
        )
        return cls(
            S3Bucket(
                bucket_name=settings.s3_bucket, bucket_folder=settings.s3_prefix, credentials=credentials
            )
        )

    def _key(self, key: str) -> str:
        return self.folder + check_key(key)

    def put(self, key: str, data: bytes, *, overwrite: bool = False) -> None:
        """One PUT; without `overwrite` it carries If-None-Match: *, so S3 refuses to replace an object."""
        condition = {} if overwrite else {"IfNoneMatch": "*"}
        with _s3_errors(key):
            self._client.put_object(Bucket=self.bucket_name, Key=self._key(key), Body=data, **condition)

    def put_file(self, key: str, path: Path, *, overwrite: bool = False) -> None:
        """Upload a file: one PUT when small, else a multipart upload that is visible only once complete."""
        from boto3.exceptions import S3UploadFailedError

        client = self._client if overwrite else self._create_only
        with _s3_errors(key):
            try:
                client.upload_file(str(path), self.bucket_name, self._key(key), Config=self._transfer)
            except S3UploadFailedError as failed:
                raise (failed.__context__ or failed) from None  # boto3 wraps the ClientError that says why

    def get(self, key: str) -> bytes:
        """Read an object's bytes."""
        with _s3_errors(key):
            return cast(
                bytes, self._client.get_object(Bucket=self.bucket_name, Key=self._key(key))["Body"].read()
            )

    def get_to_file(self, key: str, path: Path) -> None:
        """Download an object to a local file (ranged, in parallel)."""
        with _s3_errors(key):
            self._client.download_file(self.bucket_name, self._key(key), str(path), Config=self._transfer)

    def open(self, key: str) -> BinaryIO:
        """A buffered binary stream of the object's body (close it when done)."""
        with _s3_errors(key):
            body = self._client.get_object(Bucket=self.bucket_name, Key=self._key(key))["Body"]
        return io.BufferedReader(body, READ_BUFFER)

    def exists(self, key: str) -> bool:
        """Whether the key exists."""
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        """Keys under a prefix, sorted."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket_name, Prefix=self.folder + prefix.rstrip("/")
        )
        return _under((o["Key"] for page in pages for o in page.get("Contents", [])), self.folder, prefix)

    def delete(self, key: str) -> None:
        """Remove an object if present."""
        self._client.delete_object(Bucket=self.bucket_name, Key=self._key(key))

    def size(self, key: str) -> int:
        """Object size in bytes."""
        with _s3_errors(key):
            return int(self._client.head_object(Bucket=self.bucket_name, Key=self._key(key))["ContentLength"])

    def uri(self, key: str) -> str:
        """The object's s3:// URI."""
        return f"s3://{self.bucket_name}/{self._key(key)}"


# ---- Azure Blob Storage ------------------------------------------------------------------------------------


class _BlobClientOptions(TypedDict):
    """Transfer sizes, timeouts and retries the Azure SDK takes as keyword arguments."""

    max_single_put_size: int
    max_block_size: int
    max_single_get_size: int
    max_chunk_get_size: int
    connection_timeout: int
    read_timeout: int
    retry_total: int
    initial_backoff: int
    increment_base: int


def _blob_service(credentials: AzureBlobStorageCredentials) -> BlobServiceClient:
    """A synchronous client for the prefect-azure credentials (the block itself hands out async clients)."""
    from azure.storage.blob import BlobServiceClient

    # Reads come in 4 MB ranges: the SDK briefly holds 8 bytes per byte of a range (list() of its
    # response stream pre-sizes to the byte length), so a bigger range costs memory, a smaller one round trips.
    sizes: _BlobClientOptions = {
        "max_single_put_size": PART_BYTES,
        "max_block_size": PART_BYTES,
        "max_single_get_size": PART_BYTES // 2,
        "max_chunk_get_size": PART_BYTES // 2,
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
        "retry_total": SDK_ATTEMPTS - 1,
        "initial_backoff": 1,
        "increment_base": 2,
    }
    if credentials.connection_string is not None:
        return BlobServiceClient.from_connection_string(
            credentials.connection_string.get_secret_value(), **sizes
        )
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    identity: Any = DefaultAzureCredential()
    if credentials.client_id and credentials.tenant_id and credentials.client_secret:
        identity = ClientSecretCredential(
            credentials.tenant_id, credentials.client_id, credentials.client_secret.get_secret_value()
        )
    return BlobServiceClient(str(credentials.account_url), credential=identity, **sizes)


@contextmanager
def _azure_errors(key: str) -> Iterator[None]:
    """Azure's refusals as the store's exceptions; network and permission errors propagate unchanged."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    try:
        yield
    except ResourceExistsError as error:
        raise ObjectExists(key) from error
    except ResourceNotFoundError as error:
        raise FileNotFoundError(key) from error


class AzureStore:
    """Blobs in an Azure Storage container, under the block's folder; uploads are create-only unless told."""

    name = "azure"

    def __init__(self, container: AzureBlobStorageContainer) -> None:
        self.block = container
        self.folder = _folder(container.base_folder)
        self._container = _blob_service(container.credentials).get_container_client(container.container_name)

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureStore:
        """The container of `RTV_AZURE_BLOCK`, or of the `RTV_AZURE_*` settings."""
        from prefect_azure import AzureBlobStorageContainer, AzureBlobStorageCredentials

        if settings.azure_block:
            return cls(_loaded(AzureBlobStorageContainer.load(settings.azure_block)))
        if settings.azure_connection_string is None:
            raise ValueError("azure storage needs RTV_AZURE_CONNECTION_STRING or RTV_AZURE_BLOCK")
        credentials = AzureBlobStorageCredentials(connection_string=settings.azure_connection_string)
        return cls(
            AzureBlobStorageContainer(
                container_name=settings.azure_container,
                credentials=credentials,
                base_folder=settings.azure_prefix or None,
            )
        )

    def _blob(self, key: str) -> str:
        return self.folder + check_key(key)

    def put(self, key: str, data: bytes, *, overwrite: bool = False) -> None:
        """One Put Blob; without `overwrite` it is conditional, so Azure refuses to replace a blob."""
        with _azure_errors(key):
            self._container.upload_blob(self._blob(key), data, overwrite=overwrite)

    def put_file(self, key: str, path: Path, *, overwrite: bool = False) -> None:
        """Upload a file: one Put Blob when small, else blocks read from disk and committed (visible) at once."""
        with _azure_errors(key), open(path, "rb") as handle:
            self._container.upload_blob(
                self._blob(key),
                handle,
                length=path.stat().st_size,
                overwrite=overwrite,
                max_concurrency=PARALLEL_PARTS,
            )

    def get(self, key: str) -> bytes:
        """Read a blob's bytes."""
        with _azure_errors(key):
            return self._container.download_blob(self._blob(key)).readall()

    def get_to_file(self, key: str, path: Path) -> None:
        """Download a blob to a local file."""
        with _azure_errors(key):
            download = self._container.download_blob(self._blob(key), max_concurrency=PARALLEL_PARTS)
            with open(path, "wb") as handle:
                download.readinto(handle)

    def open(self, key: str) -> BinaryIO:
        """A buffered binary stream of the blob, fetched in ranges as it is read (close it when done)."""
        with _azure_errors(key):
            download = self._container.download_blob(self._blob(key))
        return io.BufferedReader(_ReadStream(download.read), READ_BUFFER)

    def exists(self, key: str) -> bool:
        """Whether the key exists."""
        return bool(self._container.get_blob_client(self._blob(key)).exists())

    def list(self, prefix: str = "") -> list[str]:
        """Keys under a prefix, sorted."""
        return _under(
            self._container.list_blob_names(name_starts_with=self.folder + prefix.rstrip("/")),
            self.folder,
            prefix,
        )

    def delete(self, key: str) -> None:
        """Remove a blob (and its snapshots) if present."""
        from azure.core.exceptions import ResourceNotFoundError

        with suppress(ResourceNotFoundError):
            self._container.delete_blob(self._blob(key), delete_snapshots="include")

    def size(self, key: str) -> int:
        """Blob size in bytes."""
        with _azure_errors(key):
            return int(self._container.get_blob_client(self._blob(key)).get_blob_properties().size)

    def uri(self, key: str) -> str:
        """The blob's URL."""
        return str(self._container.get_blob_client(self._blob(key)).url)


# ---- two stores as one -----------------------------------------------------------------------------------


class ReplicatedStore:
    """Writes go to the primary, then the backup; reads fall back to the backup when the primary lacks a key."""

    def __init__(self, primary: ObjectStore, backup: ObjectStore) -> None:
        self.primary, self.backup = primary, backup
        self.name = f"{primary.name}+{backup.name}"

    def put(self, key: str, data: bytes, *, overwrite: bool = False) -> None:
        """Write to both stores, primary first."""
        self.primary.put(key, data, overwrite=overwrite)
        self.backup.put(key, data, overwrite=overwrite)

    def put_file(self, key: str, path: Path, *, overwrite: bool = False) -> None:
        """Upload to both stores, primary first."""
        self.primary.put_file(key, path, overwrite=overwrite)
        self.backup.put_file(key, path, overwrite=overwrite)

    def get(self, key: str) -> bytes:
        """Read from the primary, else the backup."""
        try:
            return self.primary.get(key)
        except FileNotFoundError:
            return self.backup.get(key)

    def get_to_file(self, key: str, path: Path) -> None:
        """Download from the primary, else the backup."""
        try:
            self.primary.get_to_file(key, path)
        except FileNotFoundError:
            self.backup.get_to_file(key, path)

    def open(self, key: str) -> BinaryIO:
        """Stream from the primary, else the backup."""
        try:
            return self.primary.open(key)
        except FileNotFoundError:
            return self.backup.open(key)

    def exists(self, key: str) -> bool:
        """Whether either store has the key."""
        return self.primary.exists(key) or self.backup.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        """Keys under a prefix in either store, sorted."""
        return sorted(set(self.primary.list(prefix)) | set(self.backup.list(prefix)))

    def delete(self, key: str) -> None:
        """Remove the key from both stores."""
        self.primary.delete(key)
        self.backup.delete(key)

    def size(self, key: str) -> int:
        """Object size, from the primary, else the backup."""
        try:
            return self.primary.size(key)
        except FileNotFoundError:
            return self.backup.size(key)

    def uri(self, key: str) -> str:
        """The primary's location of the key."""
        return self.primary.uri(key)
