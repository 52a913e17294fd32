"""Removes objects no document references (a crash between object write and commit).

One process sweeps at a time: the leader of the sweeper's advisory lock, every
``SWEEP_EVERY`` (the first sweep one interval after start). The grace period keeps it away
from objects whose send is still sealing or committing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiohttp import web

from gateway.background import LeaderLoop, run_with_app
from gateway.runtime import Runtime, clock_of
from keys.clock import Clock
from storage import documents, workflow
from storage.db import DbConnection
from storage.objects import FilesystemObjectStore, sweep

log = logging.getLogger(__name__)

SWEEP_LOCK = documents.OBJECT_SWEEP_LOCK
SWEEP_EVERY = timedelta(minutes=10)
GRACE = timedelta(hours=1)


async def _sweep(
    runtime: Runtime, connection: DbConnection, now: datetime, grace: timedelta
) -> int:
    """One pass by the holder of the sweeper lock on *connection*."""

    async def referenced(keys: list[str]) -> set[str]:
        # Current documents and every earlier draft version the history keeps.
        current = await documents.referenced_objects(connection, keys)
        return current | await workflow.referenced_objects(connection, keys)

    deleted = await sweep(runtime.objects, referenced, grace, now)
    if isinstance(runtime.objects, FilesystemObjectStore):
        await runtime.objects.remove_stale_temp_files(now - grace)
    return deleted


async def sweep_once(runtime: Runtime, now: datetime, grace: timedelta = GRACE) -> int | None:
    """One pass; None when another process holds the sweeper lock."""
    async with runtime.pool.acquire() as connection:
        if not await documents.try_lock_object_sweep(connection):
            return None
        try:
            return await _sweep(runtime, connection, now, grace)
        finally:
            await documents.unlock_object_sweep(connection)


def object_sweeper(runtime: Runtime, clock: Clock) -> LeaderLoop:
    async def step(connection: DbConnection) -> None:
        await _sweep(runtime, connection, clock(), GRACE)

    every = SWEEP_EVERY.total_seconds()
    return LeaderLoop(
        SWEEP_LOCK,
        step,
        every,
        acquire=runtime.pool.acquire,
        name="object-sweeper",
        initial_delay=every,
        logger=log,
    )


def install_object_sweeper(app: web.Application, runtime: Runtime) -> None:
    run_with_app(app, object_sweeper(runtime, clock_of(app)))
