"""Deletes objects that no database row references (left by a crash between the object
write and the transaction that should have referenced it).

Safe to run on several processes at once: listing is read-only, deleting an object that
another sweeper removed first is not an error, and the grace period keeps a sweeper away
from objects whose referencing transaction may still be in flight. The caller serialises
runs if it wants to (an advisory lock) and supplies the reference check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from storage.objects.api import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500

ReferenceCheck = Callable[[list[str]], Awaitable[set[str]]]


async def sweep(
    store: ObjectStore,
    is_referenced: ReferenceCheck,
    grace: timedelta,
    now: datetime,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Delete unreferenced objects created before ``now - grace``; returns how many."""
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    deleted = 0
    batch: list[str] = []
    async for key in store.list_keys(older_than=now - grace):
        batch.append(key)
        if len(batch) >= batch_size:
            deleted += await _sweep_batch(store, is_referenced, batch)
            batch = []
    if batch:
        deleted += await _sweep_batch(store, is_referenced, batch)
    if deleted:
        log.info("object sweeper deleted %d unreferenced objects", deleted)
    return deleted


async def _sweep_batch(store: ObjectStore, is_referenced: ReferenceCheck, keys: list[str]) -> int:
    referenced = await is_referenced(keys)
    orphans = [key for key in keys if key not in referenced]
    for key in orphans:
        await store.delete(key)
    return len(orphans)
