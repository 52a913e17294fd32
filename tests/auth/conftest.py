"""Helpers for the login and access-control tests: database peeks and forged tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from storage.db import connect
from tests.conftest import Gateway
from tests.identity_support import admins, gaj_admin, jyj_admin  # noqa: F401 (fixtures)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def sql(gateway: Gateway, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one statement on the gateway's database (as the schema owner)."""

    async def run() -> list[asyncpg.Record]:
        connection = await connect(gateway.database_url)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def problem(response: httpx.Response, status: int, code: str, reason: str | None = None) -> None:
    """The response is RFC 9457 problem+json with this status, code and (optionally) reason."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    if reason is not None:
        assert body.get("reason") == reason, body


def audit_events(gateway: Gateway, event_type: str) -> list[dict[str, Any]]:
    """Events of *event_type*, whether still in the outbox or already sequenced into the log."""
    sequenced = sql(gateway, "SELECT to_regclass('audit_log') IS NOT NULL AS present")[0]
    query = "SELECT details FROM audit_outbox WHERE type = $1"
    if sequenced["present"]:
        query += (
            " UNION ALL SELECT convert_from(details, 'UTF8')::jsonb FROM audit_log"
            " WHERE type = $1 AND details IS NOT NULL"
        )
    return [dict(row["details"]) for row in sql(gateway, query, event_type)]
