"""The SQL of point-in-time recovery: WAL archiving settings and the end of recovery.

Used by ``sealhub backup`` and ``sealhub restore`` (gateway/backup.py) as the embedded
server's superuser; nothing here runs in the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Archiving:
    mode: str
    command: str
    timeout: str


async def archiving(connection: asyncpg.Connection) -> Archiving:
    """The settings the running server uses now (ALTER SYSTEM takes effect on restart)."""
    return Archiving(
        mode=str(await connection.fetchval("SHOW archive_mode")),
        command=str(await connection.fetchval("SHOW archive_command")),
        timeout=str(await connection.fetchval("SHOW archive_timeout")),
    )


def _literal(value: str) -> str:
    """A SQL string literal (ALTER SYSTEM takes no parameters)."""
    return "'" + value.replace("'", "''") + "'"


async def set_archiving(connection: asyncpg.Connection, command: str, timeout_s: int) -> None:
    """Turn WAL archiving on with *command*, in postgresql.auto.conf; a segment is archived at
    the latest *timeout_s* after its first write, bounding what a lost disk can take."""
    await connection.execute("ALTER SYSTEM SET wal_level = 'replica'")
    await connection.execute("ALTER SYSTEM SET archive_mode = 'on'")
    await connection.execute(f"ALTER SYSTEM SET archive_command = {_literal(command)}")
    await connection.execute(f"ALTER SYSTEM SET archive_timeout = {int(timeout_s)}")
    await connection.execute("SELECT pg_reload_conf()")


async def in_recovery(connection: asyncpg.Connection) -> bool:
    return bool(await connection.fetchval("SELECT pg_is_in_recovery()"))


async def has_audit_log(connection: asyncpg.Connection) -> bool:
    """Whether the schema reached the audit log (a restore to before the first migration
    has none, and so nothing to compare with a cosigned checkpoint but size 0)."""
    return bool(await connection.fetchval("SELECT to_regclass('sealhub.audit_log') IS NOT NULL"))
