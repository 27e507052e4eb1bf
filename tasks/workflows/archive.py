"""Lifecycle: move zone objects and raw files older than the archive age into `archive/`, losing nothing."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.platform.storage import ObjectExists, ObjectStore

if TYPE_CHECKING:
    from tasks.runtime import Runtime

ARCHIVE = "archive"


def copy_object(store: ObjectStore, source: str, target: str) -> None:
    """Copy an object within a store through a temporary file (objects can be hundreds of MB)."""
    with tempfile.NamedTemporaryFile(prefix="rtv-archive-") as spool, store.open(source) as handle:
        while chunk := handle.read(1024 * 1024):
            spool.write(chunk)
        spool.flush()
        try:
            store.put_file(target, Path(spool.name))
        except ObjectExists:  # a previous, interrupted run copied it already
            if store.size(target) != store.size(source):
                raise


def archive_old(rt: Runtime, *, older_than_days: int, now: datetime | None = None) -> dict[str, int]:
    """Copy, record, then delete: an interrupted run leaves every object readable and can simply run again."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    moved = {"objects": 0, "raw_files": 0, "bytes": 0}
    for obj in rt.catalog.zone_objects():
        created = obj.created_at if obj.created_at.tzinfo else obj.created_at.replace(tzinfo=UTC)
        if created >= cutoff:
            continue
        target = f"{ARCHIVE}/{obj.key}"
        copy_object(rt.store, obj.key, target)
        rt.catalog.mark_archived(obj.id, target)
        rt.store.delete(obj.key)
        moved["objects"] += 1
        moved["bytes"] += obj.size_bytes or 0
    for ingestion in rt.catalog.list_ingestions(limit=1_000_000):
        received = (
            ingestion.received_at
            if ingestion.received_at.tzinfo
            else ingestion.received_at.replace(tzinfo=UTC)
        )
        if received >= cutoff or ingestion.raw_key.startswith(f"{ARCHIVE}/"):
            continue
        target = f"{ARCHIVE}/{ingestion.raw_key}"
        copy_object(rt.store, ingestion.raw_key, target)
        rt.catalog.update(ingestion.id, raw_key=target)
        rt.store.delete(ingestion.raw_key)
        moved["raw_files"] += 1
        moved["bytes"] += ingestion.size_bytes
    return moved


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def purge_expired(rt: Runtime, *, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete archived objects and raw files written more than `retention_days` ago; the catalog keeps the record.

    Only what is already in archive/ is eligible, so nothing skips the archive step; a re-run after an
    interruption deletes what is left (deleting a missing object is a no-op).
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    purged = {"objects": 0, "raw_files": 0, "bytes": 0}
    for obj in rt.catalog.purgeable_objects(cutoff):
        rt.store.delete(obj.key)
        rt.catalog.mark_purged(obj.id)
        purged["objects"] += 1
        purged["bytes"] += obj.size_bytes or 0
    for ingestion in rt.catalog.list_ingestions(limit=1_000_000):
        if (
            ingestion.raw_purged_at is not None
            or not ingestion.raw_key.startswith(f"{ARCHIVE}/")
            or _aware(ingestion.received_at) >= cutoff
        ):
            continue
        rt.store.delete(ingestion.raw_key)
        rt.catalog.update(ingestion.id, raw_purged_at=datetime.now(UTC))
        purged["raw_files"] += 1
        purged["bytes"] += ingestion.size_bytes
    return purged
