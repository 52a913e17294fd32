"""The ``enrollment_codes`` table: at most one pending one-time code per official.

Only the code's hash is stored (keys.challenge hashes and compares it); the row also keeps
who handed the code out and who cosigned it, which the key enrolled with it inherits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage.db import DbConnection


@dataclass(frozen=True)
class PendingCode:
    code_hash: str
    expires_at: datetime
    failed_attempts: int
    used_at: datetime | None
    issued_by: str | None
    cosigned_by: str | None
    inherited_handlers: tuple[str, ...]


async def store(
    connection: DbConnection,
    official_id: str,
    *,
    code_hash: str,
    now: datetime,
    expires_at: datetime,
    issued_by: str | None,
    cosigned_by: str | None,
    inherited_handlers: Iterable[str],
) -> None:
    """The official's code, replacing a pending one (its attempts and use start afresh)."""
    await connection.execute(
        "INSERT INTO enrollment_codes (official_id, code_hash, created_at, expires_at,"
        " issued_by, cosigned_by, inherited_handlers) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (official_id) DO UPDATE SET code_hash = EXCLUDED.code_hash,"
        " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,"
        " failed_attempts = 0, used_at = NULL, issued_by = EXCLUDED.issued_by,"
        " cosigned_by = EXCLUDED.cosigned_by, inherited_handlers = EXCLUDED.inherited_handlers",
        official_id,
        code_hash,
        now,
        expires_at,
        issued_by,
        cosigned_by,
        sorted(inherited_handlers),
    )


async def pending_code(connection: DbConnection, official_id: str) -> PendingCode | None:
    """The official's code (read under the official's row lock, which serializes its use)."""
    row = await connection.fetchrow(
        "SELECT code_hash, expires_at, failed_attempts, used_at, issued_by, cosigned_by,"
        " inherited_handlers FROM enrollment_codes WHERE official_id = $1",
        official_id,
    )
    if row is None:
        return None
    return PendingCode(
        code_hash=row["code_hash"],
        expires_at=row["expires_at"],
        failed_attempts=row["failed_attempts"],
        used_at=row["used_at"],
        issued_by=row["issued_by"],
        cosigned_by=row["cosigned_by"],
        inherited_handlers=tuple(row["inherited_handlers"]),
    )


async def count_failed_attempt(connection: DbConnection, official_id: str) -> None:
    await connection.execute(
        "UPDATE enrollment_codes SET failed_attempts = failed_attempts + 1 WHERE official_id = $1",
        official_id,
    )


async def mark_used(connection: DbConnection, official_id: str, *, now: datetime) -> None:
    await connection.execute(
        "UPDATE enrollment_codes SET used_at = $2 WHERE official_id = $1", official_id, now
    )


async def delete(connection: DbConnection, official_id: str) -> None:
    await connection.execute("DELETE FROM enrollment_codes WHERE official_id = $1", official_id)
