"""The object sweeper removes what no document references, once, under a lock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.exchange.sweeper import SWEEP_LOCK, sweep_once
from gateway.runtime import Runtime, open_runtime
from storage.objects import ObjectNotFound
from tests.conftest import gateway_database_env


async def _put(runtime: Runtime, data: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return (await runtime.objects.put(chunks(), max_bytes=1024)).key


async def test_orphans_go_referenced_objects_stay(db_url: str, tmp_path: Path) -> None:
    settings = load_settings({**gateway_database_env(db_url), "SEALHUB_DATA_DIR": str(tmp_path)})
    async with open_runtime(settings, demo=True) as runtime:
        orphan = await _put(runtime, b"left by a crash")
        kept = await _put(runtime, b"%PDF- draft")
        async with runtime.pool.acquire() as connection:
            await connection.execute(
                "INSERT INTO documents (id, sender, created_by, title, doc_number, doc_year,"
                " urgency, classification, status, draft_object, draft_sha256, draft_size,"
                " created_at) VALUES ($1, 'yl', 'o', 't', 'n', 2026, 'normal', 'public',"
                " 'in_approval', $2, $3, 11, now())",
                uuid.uuid4(),
                kept,
                "0" * 64,
            )
        now = datetime.now(UTC)
        assert await sweep_once(runtime, now) == 0  # within the grace period: untouched
        async with runtime.pool.acquire() as holder:
            await holder.execute("SELECT pg_advisory_lock($1)", SWEEP_LOCK)
            assert await sweep_once(runtime, now + timedelta(hours=2)) is None
            await holder.execute("SELECT pg_advisory_unlock($1)", SWEEP_LOCK)
        assert await sweep_once(runtime, now + timedelta(hours=2)) == 1
        await runtime.objects.stat(kept)
        with pytest.raises(ObjectNotFound):
            await runtime.objects.stat(orphan)
