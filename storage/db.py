"""PostgreSQL connections: one owner connection for migrations, a pool for the gateway.

The schema belongs to ``sealhub_owner``; the gateway's pool runs as ``sealhub_app``,
which the audit tables allow to INSERT and SELECT only. Both roles are set per
connection with ``SET ROLE`` semantics (a startup parameter), so one login URL serves
the embedded default while production can give the gateway its own login.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

SCHEMA = "sealhub"
OWNER_ROLE = "sealhub_owner"
APP_ROLE = "sealhub_app"

# What repositories accept: a plain connection or one borrowed from the pool.
DbConnection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def _init_connection(connection: asyncpg.Connection) -> None:
    """JSON and JSONB travel as Python objects, never re-encoded by hand."""
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name,
            encoder=lambda value: json.dumps(value, ensure_ascii=False, separators=(",", ":")),
            decoder=json.loads,
            schema="pg_catalog",
        )


def _server_settings(role: str | None) -> dict[str, str]:
    settings = {"search_path": SCHEMA, "application_name": "sealhub", "timezone": "UTC"}
    if role:
        settings["role"] = role
    return settings


async def connect(dsn: str, *, role: str | None = OWNER_ROLE) -> asyncpg.Connection:
    """A single connection, by default as the schema owner (migrations, admin commands)."""
    connection = await asyncpg.connect(dsn, server_settings=_server_settings(role))
    await _init_connection(connection)
    return connection


async def create_pool(
    dsn: str, *, role: str = APP_ROLE, min_size: int = 2, max_size: int = 20
) -> asyncpg.Pool:
    """The gateway's pool, as the application role."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=_server_settings(role),
        init=_init_connection,
        command_timeout=60,
    )
    assert pool is not None
    return pool


def record_to_dict(record: Any) -> dict[str, Any]:
    return dict(record.items())
