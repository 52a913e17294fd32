"""Removes objects no document references (a crash between object write and commit).

One process sweeps at a time (a PostgreSQL advisory lock taken without waiting); the
grace period keeps it away from objects whose send is still sealing or committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.runtime import Runtime
from storage import documents, workflow
from storage.objects import FilesystemObjectStore, sweep

log = logging.getLogger(__name__)

SWEEP_LOCK = documents.OBJECT_SWEEP_LOCK
SWEEP_EVERY = timedelta(minutes=10)
GRACE = timedelta(hours=1)


async def sweep_once(runtime: Runtime, now: datetime, grace: timedelta = GRACE) -> int | None:
    """One pass; None when another process holds the sweeper lock."""
    async with runtime.pool.acquire() as connection:
        if not await documents.try_lock_object_sweep(connection):
            return None
        try:

            async def referenced(keys: list[str]) -> set[str]:
                # Current documents and every earlier draft version the history keeps.
                current = await documents.referenced_objects(connection, keys)
                return current | await workflow.referenced_objects(connection, keys)

            deleted = await sweep(runtime.objects, referenced, grace, now)
            if isinstance(runtime.objects, FilesystemObjectStore):
                await runtime.objects.remove_stale_temp_files(now - grace)
            return deleted
        finally:
            await documents.unlock_object_sweep(connection)


def install_object_sweeper(app: web.Application, runtime: Runtime) -> None:
    async def loop() -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY.total_seconds())
            try:
                await sweep_once(runtime, datetime.now(UTC))
            except Exception:
                log.exception("object sweep failed; retrying at the next interval")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(lifetime)
