"""Session advisory locks: which process does a job that must run in one place at a time.

A session lock lives as long as the connection that took it: when the holder's process dies
or its connection drops, PostgreSQL releases the lock and another process can take it. The
keys are 64-bit integers chosen by the callers (see ``gateway/background.py``).
"""

from __future__ import annotations

from storage.db import DbConnection


async def try_advisory_lock(connection: DbConnection, key: int) -> bool:
    """Take the session lock *key* without waiting; False when another session holds it."""
    return bool(await connection.fetchval("SELECT pg_try_advisory_lock($1)", key))


async def advisory_lock(connection: DbConnection, key: int) -> None:
    """Take the session lock *key*, waiting for its holder (migrations, one at a time)."""
    await connection.execute("SELECT pg_advisory_lock($1)", key)


async def advisory_unlock(connection: DbConnection, key: int) -> None:
    await connection.execute("SELECT pg_advisory_unlock($1)", key)


async def advisory_unlock_all(connection: DbConnection) -> None:
    """Every session lock of *connection* (the pool resets sessions too; this is explicit)."""
    await connection.execute("SELECT pg_advisory_unlock_all()")
