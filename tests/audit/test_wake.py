"""Waking the sequencer: writers NOTIFY only while it sleeps, and no event is left behind.

A NOTIFY serialises committers on a cluster-wide lock, so outbox writers must not send one
while the sequencer is awake (migration 0010); these tests check that they do not, that they
do while it sleeps, and that the sequencer cannot fall asleep past a writer's uncommitted
event. No timings are asserted: waits are generous upper bounds on something that happens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.audit import sequencer as audit_sequencer
from gateway.audit.sequencer import AuditService
from storage import audit_log
from storage.audit_outbox import record_event
from storage.db import connect
from tests.audit.conftest import add_events, event

WAIT = 20.0  # seconds: an upper bound for things that must happen, never a speed target


MARKER = "sealhub_test_marker"


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """Channel names, in commit order, of the audit channel's and the marker's NOTIFYs."""
    connection = await connect(db_url)
    received: asyncio.Queue[str] = asyncio.Queue()
    for channel in (audit_log.NOTIFY_CHANNEL, MARKER):
        await connection.add_listener(channel, lambda *args: received.put_nowait(str(args[2])))
    try:
        yield received
    finally:
        await connection.close()


async def test_no_notify_while_the_sequencer_is_awake(
    pool: asyncpg.Pool, listener: asyncio.Queue[str]
) -> None:
    await add_events(pool, 3)
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_notify($1, '')", MARKER)
    # Notifications arrive in commit order: had the writers sent any, they would come first.
    assert await asyncio.wait_for(listener.get(), WAIT) == MARKER


async def test_writers_notify_while_the_sequencer_sleeps(
    pool: asyncpg.Pool, listener: asyncio.Queue[str]
) -> None:
    async with pool.acquire() as sequencer:
        assert await audit_log.try_acquire_sequencer(sequencer)
        assert await audit_log.start_sleeping(sequencer)
        await add_events(pool, 1)
        assert await asyncio.wait_for(listener.get(), WAIT) == audit_log.NOTIFY_CHANNEL
        await audit_log.stop_sleeping(sequencer)
        assert await audit_sequencer.sequence_pending(sequencer) == 1


async def test_the_sequencer_cannot_sleep_past_an_uncommitted_event(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as sequencer, pool.acquire() as writer:
        assert await audit_log.try_acquire_sequencer(sequencer)
        transaction = writer.transaction()
        await transaction.start()
        await record_event(writer, event(1))
        # The writer saw the sequencer awake and will not notify: it must not go to sleep.
        assert not await audit_log.start_sleeping(sequencer)
        assert await audit_sequencer.sequence_pending(sequencer) == 0
        assert not await audit_log.start_sleeping(sequencer)
        await transaction.commit()
        # Committed but not sequenced: still no sleeping.
        assert not await audit_log.start_sleeping(sequencer)
        assert await audit_sequencer.sequence_pending(sequencer) == 1
        assert await audit_log.start_sleeping(sequencer)
        await audit_log.stop_sleeping(sequencer)
        # A rolled-back writer leaves nothing behind that keeps the sequencer awake.
        with contextlib.suppress(RuntimeError):
            async with writer.transaction():
                await record_event(writer, event(2))
                raise RuntimeError("the change failed")
        assert await audit_log.start_sleeping(sequencer)
        await audit_log.stop_sleeping(sequencer)


async def _wait_for_size(pool: asyncpg.Pool, size: int) -> None:
    async with asyncio.timeout(WAIT), pool.acquire() as connection:
        while await audit_log.log_size(connection) < size:  # noqa: ASYNC110 - polls the db
            await asyncio.sleep(0.02)


async def test_the_service_sequences_without_its_poll(
    pool: asyncpg.Pool, signer: audit_log.CheckpointSigner
) -> None:
    """With a poll interval far beyond the waits below, only a NOTIFY (sleeping) or the
    service's own short look-again (busy) can get the events into the log."""
    service = AuditService(pool, signer, poll_interval=3600)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(WAIT):
            while not service.is_sequencer:  # noqa: ASYNC110 - watching it from outside
                await asyncio.sleep(0.01)
        await add_events(pool, 5)  # one by one, the service asleep in between
        await _wait_for_size(pool, 5)
        # Writers in flight keep it awake; it looks again by itself.
        async with pool.acquire() as writer:
            for n in range(5, 25):
                async with writer.transaction():
                    await record_event(writer, event(n))
                    await asyncio.sleep(0.001)
        await _wait_for_size(pool, 25)
        async with pool.acquire() as connection:
            entries = await audit_log.entries_range(connection, 0, 30)
        assert [e.document for e in entries] == [f"doc-{n}" for n in range(25)]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
