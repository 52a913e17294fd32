"""Audit events commit with the change they record, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.audit_outbox import AuditEvent, OutboxSink
from storage.db import create_pool


async def test_event_commits_with_its_transaction_or_not_at_all(db_url: str) -> None:
    pool = await create_pool(db_url, min_size=1, max_size=2)
    sink = OutboxSink()
    now = datetime.now(UTC)
    try:
        async with pool.acquire() as connection:
            with pytest.raises(RuntimeError):
                async with connection.transaction():
                    await sink.record(connection, AuditEvent("login.failed", now, details={"a": 1}))
                    raise RuntimeError("the change failed")
            assert await connection.fetchval("SELECT count(*) FROM audit_outbox") == 0
            async with connection.transaction():
                await sink.record(
                    connection,
                    AuditEvent("login.succeeded", now, actor_official="o1", details={"名": "张三"}),
                )
            row = await connection.fetchrow(
                "SELECT type, actor_official, details FROM audit_outbox"
            )
            assert dict(row) == {
                "type": "login.succeeded",
                "actor_official": "o1",
                "details": {"名": "张三"},
            }
    finally:
        await pool.close()


def test_events_are_validated() -> None:
    with pytest.raises(ValueError):
        AuditEvent("Bad Type", datetime.now(UTC))
    with pytest.raises(ValueError):
        AuditEvent("login.failed", datetime(2026, 1, 1))
