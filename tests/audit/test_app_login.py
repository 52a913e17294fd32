"""Issue 16, item 5: the gateway's database login can add to the audit log and nothing more.

Every connection a real gateway holds (pool, LISTEN) is checked in pg_stat_activity, and the
login found there tries each way to rewrite the log: each is refused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from storage.db import with_login
from tests.conftest import REPO, Gateway, login_as

AUDIT_TABLES = ("audit_log", "audit_nodes", "audit_checkpoints", "audit_cosignatures")


# A column each table has, to "change" a row without other checks getting in the way.
COLUMN = {
    "audit_log": "type",
    "audit_nodes": "hash",
    "audit_checkpoints": "note",
    "audit_cosignatures": "signature_line",
}


def attacks(table: str) -> list[str]:
    # Table names from the fixed tuple above, never from input.
    return [
        f"ALTER TABLE {table} DISABLE TRIGGER USER",
        f"ALTER TABLE {table} OWNER TO sealhub_app",
        f"UPDATE {table} SET {COLUMN[table]} = {COLUMN[table]}",  # noqa: S608
        f"DELETE FROM {table}",  # noqa: S608
        f"TRUNCATE {table}",
    ]


async def _gateway_logins(admin_url: str) -> set[str]:
    admin = await asyncpg.connect(admin_url)
    try:
        rows = await admin.fetch(
            "SELECT DISTINCT usename FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'sealhub'"
        )
    finally:
        await admin.close()
    return {row["usename"] for row in rows}


async def _try_everything(url: str) -> dict[str, str]:
    """Each statement on its own, as the gateway's login; what happened to it."""
    connection = await asyncpg.connect(url, server_settings={"search_path": "sealhub"})
    outcome: dict[str, str] = {}
    statements = [
        "SET ROLE sealhub_owner",
        "SET SESSION AUTHORIZATION sealhub_owner",
        "SET SESSION AUTHORIZATION postgres",
        *(statement for table in AUDIT_TABLES for statement in attacks(table)),
    ]
    try:
        for statement in statements:
            try:
                await connection.execute(statement)
            except asyncpg.PostgresError as exc:
                outcome[statement] = f"refused: {type(exc).__name__}"
            else:
                outcome[statement] = "ALLOWED"
                await connection.execute("RESET ROLE; RESET SESSION AUTHORIZATION")
    finally:
        await connection.close()
    return outcome


async def _log_size(admin_url: str) -> int:
    admin = await asyncpg.connect(admin_url)
    try:
        size: int = await admin.fetchval("SELECT count(*) FROM sealhub.audit_log")
    finally:
        await admin.close()
    return size


def test_the_gateways_login_cannot_become_the_owner_nor_rewrite_the_log(
    gateway: Gateway,
) -> None:
    with login_as(gateway, "yl-jyj", ["clerk"]) as clerk:  # audit events over HTTPS
        assert clerk.get("/v1/me").status_code == 200
        size = 0
        for _ in range(100):
            if (size := asyncio.run(_log_size(gateway.database_url))) > 0:
                break
            time.sleep(0.1)
        assert size > 0
        logins = asyncio.run(_gateway_logins(gateway.database_url))
        # Pool and LISTEN connections alike: only the application login.
        assert logins == {"sealhub_app"}, logins
        for login in logins:
            outcome = asyncio.run(_try_everything(with_login(gateway.database_url, login)))
            allowed = [statement for statement, result in outcome.items() if result == "ALLOWED"]
            assert allowed == [], outcome
        assert asyncio.run(_log_size(gateway.database_url)) >= size
        assert clerk.get("/v1/me").status_code == 200


async def _trigger_outcomes(admin_url: str) -> dict[str, str]:
    """A mistaken grant and an owner's SECURITY DEFINER function: the trigger still refuses,
    because the session (the login) is not the owner's."""
    admin = await asyncpg.connect(admin_url, server_settings={"search_path": "sealhub"})
    await admin.execute(
        "INSERT INTO audit_nodes (level, idx, hash) VALUES (0, 0, decode(repeat('00', 32), 'hex'))"
    )
    await admin.execute("GRANT UPDATE, DELETE ON audit_nodes TO sealhub_app")
    await admin.execute(
        "CREATE FUNCTION rewrite_nodes() RETURNS void LANGUAGE sql SECURITY DEFINER"
        " SET search_path = sealhub AS $$ UPDATE audit_nodes SET idx = idx $$"
    )
    await admin.execute("ALTER FUNCTION rewrite_nodes() OWNER TO sealhub_owner")
    await admin.execute("GRANT EXECUTE ON FUNCTION rewrite_nodes() TO sealhub_app")
    await admin.close()
    app = await asyncpg.connect(
        with_login(admin_url, "sealhub_app"), server_settings={"search_path": "sealhub"}
    )
    outcome: dict[str, str] = {}
    try:
        for statement in (
            "UPDATE audit_nodes SET idx = idx",
            "DELETE FROM audit_nodes",
            "SELECT rewrite_nodes()",
        ):
            try:
                await app.execute(statement)
            except asyncpg.InsufficientPrivilegeError as exc:
                outcome[statement] = "refused" if "append-only" in str(exc) else str(exc)
            else:
                outcome[statement] = "ALLOWED"
    finally:
        await app.close()
    return outcome


def test_the_append_only_trigger_judges_the_login_not_the_current_role(db_url: str) -> None:
    outcome = asyncio.run(_trigger_outcomes(db_url))
    assert set(outcome.values()) == {"refused"}, outcome


def test_a_gateway_given_a_superuser_login_refuses_to_serve(db_url: str, tmp_path: Path) -> None:
    served = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--data-dir", str(tmp_path / "gw")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": db_url, "SEALHUB_LOG_FORMAT": "text"},
        check=False,
    )
    assert served.returncode != 0
    assert "superuser" in served.stdout + served.stderr, served.stdout + served.stderr
