"""The shared background loops, in process on a real PostgreSQL: one leader at a time,
another takes over when the leader's connection drops, a failing step is retried, and stop
ends the loop at once. Waits are generous upper bounds, never speed targets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.background import LeaderLoop, Loop
from storage.db import DbConnection, connect, create_pool
from tests.conftest import app_url_for

WAIT = 20.0
LOCK_KEY = 0x5EA1_7E57


@pytest.fixture
async def pools(db_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    """Two pools, as two gateway processes would have."""
    first = await create_pool(app_url_for(db_url), min_size=1, max_size=2)
    second = await create_pool(app_url_for(db_url), min_size=1, max_size=2)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


class Counting:
    """A step that counts its calls and remembers its connection's backend pid."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.pid: int | None = None

    async def __call__(self, connection: DbConnection) -> float:
        self.calls += 1
        self.pid = await connection.fetchval("SELECT pg_backend_pid()")
        if self.calls <= self.fail_first:
            raise RuntimeError("a step that fails")
        return 0.05


async def _until(condition: object) -> None:
    assert callable(condition)
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 - watching it from outside
            await asyncio.sleep(0.01)


def _loop(pool: asyncpg.Pool, step: Counting) -> LeaderLoop:
    return LeaderLoop(LOCK_KEY, step, 0.05, acquire=pool.acquire, name="test-leader", retry=0.05)


async def test_one_leader_and_a_takeover_when_its_connection_drops(
    pools: tuple[asyncpg.Pool, asyncpg.Pool], db_url: str
) -> None:
    first_step, second_step = Counting(), Counting()
    first, second = _loop(pools[0], first_step), _loop(pools[1], second_step)
    first.start()
    await _until(lambda: first.is_leader and first_step.calls >= 2)
    second.start()
    try:
        await asyncio.sleep(0.5)  # many retries of the lock by the second loop
        assert not second.is_leader and second_step.calls == 0
        admin = await connect(db_url, role=None)  # the test's superuser
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", first_step.pid)
        finally:
            await admin.close()
        await _until(lambda: second.is_leader and second_step.calls >= 1)
        await _until(lambda: not first.is_leader)  # its next step found the connection gone
        # The first loop lives on and follows, without leading again while the second does.
        calls = first_step.calls
        await asyncio.sleep(0.5)
        assert not first.is_leader and first_step.calls == calls
    finally:
        await first.stop()
        await second.stop()
    assert not first.is_leader and not second.is_leader


async def test_a_failing_step_is_logged_and_retried(
    pools: tuple[asyncpg.Pool, asyncpg.Pool], caplog: pytest.LogCaptureFixture
) -> None:
    step = Counting(fail_first=2)
    loop = _loop(pools[0], step)
    with caplog.at_level(logging.ERROR, logger="sealhub.background"):
        loop.start()
        try:
            await _until(lambda: step.calls >= 4 and loop.is_leader)
        finally:
            await loop.stop()
    assert [r.getMessage() for r in caplog.records] == ["test-leader failed; retrying"] * 2


async def test_stop_ends_a_waiting_loop_and_releases_the_lock(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    step = Counting()
    loop = LeaderLoop(LOCK_KEY, step, 3600, acquire=pools[0].acquire, name="test-leader")
    loop.start()
    await _until(lambda: step.calls == 1)
    async with asyncio.timeout(5):
        await loop.stop()
    async with pools[1].acquire() as connection:
        assert await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        await connection.execute("SELECT pg_advisory_unlock_all()")


async def test_wake_cuts_the_wait_short_even_when_it_comes_during_the_step() -> None:
    calls = 0
    loop: Loop

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            loop.wake()  # arrives while the step runs: must not be lost

    loop = Loop("test-loop", step, 3600)
    loop.start()
    try:
        await _until(lambda: calls == 2)
        await asyncio.sleep(0.2)
        assert calls == 2  # then it waits for its interval
        loop.wake()
        await _until(lambda: calls == 3)
    finally:
        await loop.stop()
