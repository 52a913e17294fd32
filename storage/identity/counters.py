"""Counters shared by every gateway process: rate windows (``rate_counters``) and failed
login attempts per minute, source, kind and subject (``auth_failures``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from storage.db import DbConnection

FailureKind = Literal["login", "enroll", "token", "refresh"]


async def bump_counter(connection: DbConnection, bucket: str, window_start: datetime) -> int:
    """Count one hit in a fixed window; returns the count including this one."""
    count = await connection.fetchval(
        "INSERT INTO rate_counters (bucket, window_start, count) VALUES ($1, $2, 1)"
        " ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counters.count + 1"
        " RETURNING count",
        bucket,
        window_start,
    )
    return int(count)


async def count_failure(
    connection: DbConnection,
    *,
    minute: datetime,
    source: str,
    kind: FailureKind,
    subject: str,
    reason: str,
) -> bool:
    """Count a failed attempt; True when it is the first of its (minute, source, kind,
    subject) row, i.e. when the caller should write the one audit event for the row."""
    inserted = await connection.fetchval(
        "INSERT INTO auth_failures (minute, source, kind, subject, count, last_reason)"
        " VALUES ($1, $2, $3, $4, 1, $5)"
        " ON CONFLICT (minute, source, kind, subject) DO UPDATE"
        " SET count = auth_failures.count + 1, last_reason = EXCLUDED.last_reason"
        " RETURNING (xmax = 0)",
        minute,
        source[:64],
        kind,
        subject[:64],
        reason[:100],
    )
    return bool(inserted)


async def purge_expired(connection: DbConnection, *, now: datetime) -> None:
    """Forget rate windows that ended over an hour ago."""
    await connection.execute(
        "DELETE FROM rate_counters WHERE window_start < $1", now - timedelta(hours=1)
    )
