"""Object stores behind the zones: one small interface, a local-filesystem implementation here."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if os.name == "posix" else None
ZONES = ("raw", "validated", "quarantine", "processed", "predictions", "reports", "archive", "models")


class ObjectExists(FileExistsError):
    """A write would replace an existing object; zone objects are written once."""


class ObjectStore(Protocol):
    """Bytes by key. Writes are atomic and never clobber unless `overwrite=True`."""

    name: str

    def put(self, key: str, data: bytes, *, overwrite: bool = False) -> None: ...

    def put_file(self, key: str, path: Path, *, overwrite: bool = False) -> None: ...

    def get(self, key: str) -> bytes: ...

    def get_to_file(self, key: str, path: Path) -> None: ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def size(self, key: str) -> int: ...

    def uri(self, key: str) -> str: ...


def check_key(key: str) -> str:
    """Reject keys that could escape the store root or are not plain relative paths."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"invalid object key {key!r}")
    return key


class LocalStore:
    """Objects as files under a root directory; temp file + fsync + link/rename makes each write atomic."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Filesystem path of a key."""
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, *, overwrite: bool = False, durable: bool = True) -> None:
        """Write bytes atomically; with `durable=False` the caller makes them durable later with `sync`."""
        self._write_atomic(key, lambda handle: handle.write(data), overwrite, durable)

    def sync(self, keys: Sequence[str]) -> None:
        """Make objects written with `durable=False` durable: one filesystem sync for all of them."""
        if not keys:
            return
        # one syncfs is one journal commit for the whole group; an fsync per file is one commit each
        fd = os.open(self.path(keys[0]).parent, os.O_RDONLY)
        try:
            if _syncfs(fd):
                return
        finally:
            os.close(fd)
        for key in keys:
            with open(self.path(key), "rb") as handle:
                os.fsync(handle.fileno())
        for folder in {self.path(key).parent for key in keys}:
            _fsync_dir(folder)

    def put_file(self, key: str, path: Path, *, overwrite: bool = False) -> None:
        """Copy a local file in atomically (a hard link when it is on the same filesystem and durable)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not overwrite:
            try:
                os.link(path, target)  # no copy of a 700 MB landing; fails if the target exists
                with open(target, "rb") as handle:
                    os.fsync(handle.fileno())
                _fsync_dir(target.parent)
                return
            except FileExistsError:
                raise ObjectExists(key) from None
            except OSError:
                pass  # another filesystem: copy below
        with open(path, "rb") as source:
            self._write_atomic(key, lambda handle: shutil.copyfileobj(source, handle, 1024 * 1024), overwrite)

    def get(self, key: str) -> bytes:
        """Read an object's bytes."""
        return self.path(key).read_bytes()

    def get_to_file(self, key: str, path: Path) -> None:
        """Copy an object to a local file."""
        shutil.copyfile(self.path(key), path)

    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object (close it when done)."""
        return open(self.path(key), "rb")  # the caller owns the handle, and closes it

    def exists(self, key: str) -> bool:
        """Whether the key exists."""
        return self.path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        """Keys under a prefix, sorted."""
        base = self.root / prefix if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and ".staging-" not in p.name
        )

    def delete(self, key: str) -> None:
        """Remove an object if present."""
        self.path(key).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        """Object size in bytes."""
        return self.path(key).stat().st_size

    def uri(self, key: str) -> str:
        """A location a person can open."""
        return self.path(key).as_uri()

    def _write_atomic(
        self, key: str, write: Callable[[BinaryIO], object], overwrite: bool, durable: bool = True
    ) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=f".staging-{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            if overwrite:
                os.replace(staging, target)
            else:
                try:
                    os.link(staging, target)  # fails when the target exists: no clobbering, no race
                except FileExistsError:
                    raise ObjectExists(key) from None
            if durable:
                _fsync_dir(target.parent)
        finally:
            Path(staging).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(fd: int) -> bool:
    """syncfs(2) on the filesystem holding `fd`; False where the platform has none (then fsync each file)."""
    call = getattr(os, "syncfs", None) or getattr(_LIBC, "syncfs", None)
    if call is None:
        return False
    if call(fd) not in (None, 0):
        raise OSError(ctypes.get_errno(), "syncfs failed")
    return True


def put_group(store: ObjectStore, objects: Sequence[tuple[str, bytes]]) -> None:
    """Write new objects, all durable on return: the local store syncs once for the group, other PUTs each."""
    if isinstance(store, LocalStore):
        for key, data in objects:
            store.put(key, data, durable=False)
        store.sync([key for key, _ in objects])
        return
    for key, data in objects:  # S3 / Azure / replicated: each PUT is durable when it returns
        store.put(key, data)


def iter_chunks(data: bytes, size: int = 1024 * 1024) -> Iterator[bytes]:
    """Yield consecutive slices of a bytes object."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])
