"""PostgreSQL connections: one owner connection for migrations, a pool for the gateway.

Two logins. The schema belongs to ``sealhub_owner``, whose login runs migrations only
(``sealhub migrate``, or ``serve`` before its pool opens). The gateway logs in as
``sealhub_app``, which the audit tables allow to INSERT and SELECT only; it is neither a
superuser nor a member of the owner role, so no code in the gateway can ``SET ROLE`` its way
to the owner (:func:`check_application_login` refuses any login that could).
"""

from __future__ import annotations

import json
from typing import TypeAlias
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from keys.codes import Code, CodedError

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


class PrivilegedLogin(CodedError):
    """The gateway was given a login that could change the audit log or the schema."""

    code = Code.DATABASE_UNAVAILABLE


async def check_application_login(connection: DbConnection) -> None:
    """Refuse a login that is a superuser, may create roles, or may become the owner."""
    row = await connection.fetchrow(
        "SELECT session_user AS login, r.rolsuper, r.rolcreaterole, r.rolbypassrls,"
        " pg_has_role(session_user, $1, 'MEMBER') AS owner_member"
        " FROM pg_roles r WHERE r.rolname = session_user",
        OWNER_ROLE,
    )
    assert row is not None
    powers = [
        name
        for name, held in (
            ("a superuser", row["rolsuper"]),
            ("allowed to create roles", row["rolcreaterole"]),
            ("allowed to bypass row security", row["rolbypassrls"]),
            (f"a member of {OWNER_ROLE}", row["owner_member"]),
        )
        if held
    ]
    if powers:
        raise PrivilegedLogin(
            f"DATABASE_URL logs in as {row['login']}, which is {' and '.join(powers)}: give the"
            f" gateway the application login ({APP_ROLE}) and the owner's login to"
            " DATABASE_OWNER_URL (migrations only)"
        )


def with_login(dsn: str, user: str, password: str | None = None) -> str:
    """The same server and database as *dsn*, as another login (the embedded setup)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    credentials = quote(user, safe="")
    if password is not None:
        credentials += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path, parts.query, ""))


async def ping(connection: DbConnection) -> None:
    """One round trip: the readiness probe's proof that the database answers."""
    await connection.fetchval("SELECT 1")
