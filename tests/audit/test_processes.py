"""Several processes: writers get one gap-free order; a killed sequencer loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict

import asyncpg

from gateway.audit import sequencer
from storage import audit_log, merkle
from tests.audit.conftest import add_events
from tests.conftest import REPO

WRITERS = 4
PER_WRITER = 150


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.audit._children", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


async def _check_log(connection: asyncpg.Connection, size: int) -> list[audit_log.LogEntry]:
    entries = await audit_log.entries_range(connection, 0, size + 10)
    assert [e.index for e in entries] == list(range(size))
    assert all(e.leaf == e.expected_leaf() for e in entries)
    hashes = [merkle.leaf_hash(e.leaf) for e in entries]
    assert await audit_log.root_at(connection, size) == merkle.root_from_leaf_hashes(hashes)
    return entries


async def test_concurrent_writer_processes_get_one_gap_free_order(
    db_url: str, pool: asyncpg.Pool
) -> None:
    writers = [_child("write", db_url, str(w), str(PER_WRITER)) for w in range(WRITERS)]
    async with pool.acquire() as connection:
        assert await audit_log.try_acquire_sequencer(connection)
        # Sequence while the writers are still writing, in small batches.
        while any(w.poll() is None for w in writers):
            await sequencer.sequence_pending(connection, batch=25)
            await asyncio.sleep(0.01)
        await sequencer.sequence_pending(connection, batch=25)
        assert all(w.returncode == 0 for w in writers)
        entries = await _check_log(connection, WRITERS * PER_WRITER)
    seen: dict[int, list[int]] = defaultdict(list)
    for entry in entries:
        assert entry.details is not None
        details = json.loads(entry.details)
        seen[details["writer"]].append(details["seq"])
    # Every event exactly once, and each writer's events in the order it committed them.
    assert {w: s for w, s in seen.items()} == {w: list(range(PER_WRITER)) for w in range(WRITERS)}


async def test_killing_the_sequencer_mid_batch_loses_and_duplicates_nothing(
    db_url: str, pool: asyncpg.Pool
) -> None:
    await add_events(pool, 60)
    child = _child("crash", db_url)
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.strip() == "IN-BATCH":
            break
    assert lines == ["FIRST-BATCH-COMMITTED", "IN-BATCH"]
    async with pool.acquire() as connection:
        # The rows of the unfinished batch are written but not committed: invisible.
        assert await audit_log.log_size(connection) == 10
        child.send_signal(signal.SIGKILL)
        child.wait()
        for _ in range(100):  # the server notices the dead client, aborts, frees the lock
            if await audit_log.try_acquire_sequencer(connection):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the sequencer lock was never released")
        assert await audit_log.log_size(connection) == 10
        assert await connection.fetchval("SELECT count(*) FROM audit_outbox") == 50
        await sequencer.sequence_pending(connection)
        entries = await _check_log(connection, 60)
        assert await connection.fetchval("SELECT count(*) FROM audit_outbox") == 0
    ns = [json.loads(e.details)["n"] for e in entries if e.details is not None]
    assert ns == list(range(60))
