"""Child processes for the audit tests: outbox writers and a sequencer to be killed."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

from storage import audit_log
from storage.audit_outbox import AuditEvent, record_event
from storage.db import APP_ROLE, connect


async def write(url: str, writer: int, count: int) -> None:
    connection = await connect(url, role=APP_ROLE)
    try:
        for seq in range(count):
            async with connection.transaction():
                await record_event(
                    connection,
                    AuditEvent(
                        "test.write",
                        datetime.now(UTC),
                        department=f"dept-{writer}",
                        details={"writer": writer, "seq": seq},
                    ),
                )
    finally:
        await connection.close()


async def crash_mid_batch(url: str) -> None:
    """One committed batch of 10, then a batch that stops before its commit until killed."""
    connection = await connect(url, role=APP_ROLE)
    assert await audit_log.try_acquire_sequencer(connection)
    async with connection.transaction():
        await audit_log.sequence_batch(connection, limit=10)
    print("FIRST-BATCH-COMMITTED", flush=True)

    async def hang() -> None:
        print("IN-BATCH", flush=True)
        time.sleep(600)  # noqa: ASYNC251 - blocking on purpose: nothing runs until the kill

    async with connection.transaction():
        await audit_log.sequence_batch(connection, limit=1000)
        await hang()


if __name__ == "__main__":
    if sys.argv[1] == "write":
        asyncio.run(write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        asyncio.run(crash_mid_batch(sys.argv[2]))
