"""Versioned SQL migrations, applied in order, once, under an advisory lock.

Files are ``storage/migrations/NNNN_name.sql``. Each runs in its own transaction as the
schema owner (the owner's login, ``DATABASE_OWNER_URL``; never the gateway's);
``schema_migrations`` records what ran. Concurrent gateway replicas
starting together serialize on the lock, so each migration runs exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from keys.codes import Code, CodedError
from storage import leases
from storage.db import APP_ROLE, OWNER_ROLE, SCHEMA, DbConnection, connect

_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_LOCK_KEY = 0x5EA1_0001


class MigrationError(CodedError):
    code = Code.MIGRATION_FAILED


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number: {versions}")
    return found


# The role names are the constants of storage.db, spelled out: DDL takes no parameters.
# Runs as the migrating login (the owner's, or a superuser that bootstraps): it creates only
# roles that are missing (creating needs CREATEROLE, so the owner's own login skips that) and
# refuses to go on when the application role could act as the owner.
_ROLES_SQL = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sealhub_owner') THEN
        BEGIN
            CREATE ROLE sealhub_owner NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sealhub_app') THEN
        BEGIN
            CREATE ROLE sealhub_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'sealhub_owner', 'MEMBER') THEN
        EXECUTE format('GRANT sealhub_owner TO %I', current_user);
    END IF;
    IF pg_has_role('sealhub_app', 'sealhub_owner', 'MEMBER') THEN
        RAISE EXCEPTION 'sealhub_app must be neither a superuser nor a member of sealhub_owner'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;
"""

# The embedded server's bootstrap, as its superuser: both logins, the owner may create the schema.
_LOGINS_SQL = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sealhub_owner') THEN
        BEGIN
            CREATE ROLE sealhub_owner LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sealhub_app') THEN
        BEGIN
            CREATE ROLE sealhub_app LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    ALTER ROLE sealhub_owner LOGIN NOSUPERUSER NOCREATEROLE NOBYPASSRLS;
    ALTER ROLE sealhub_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO sealhub_owner', current_database());
END $$;
"""


async def create_logins(superuser_dsn: str) -> None:
    """Make the owner's and the application's logins (the embedded PostgreSQL's set-up)."""
    connection = await connect(superuser_dsn, role=None)
    try:
        await connection.execute(_LOGINS_SQL)
    finally:
        await connection.close()


async def pending_migrations(connection: DbConnection) -> list[str]:
    """Migrations not yet applied, as any login that may read ``schema_migrations``."""
    try:
        rows = await connection.fetch("SELECT version FROM schema_migrations")
    except (asyncpg.UndefinedTableError, asyncpg.InsufficientPrivilegeError):
        rows = []
    applied = {row["version"] for row in rows}
    return [
        f"{migration.version:04d}_{migration.name}"
        for migration in available_migrations()
        if migration.version not in applied
    ]


async def migrate(dsn: str) -> list[str]:
    """Bring the database at *dsn* to the newest schema; returns the names applied now."""
    migrations = available_migrations()
    connection = await connect(dsn, role=None)
    try:
        await leases.advisory_lock(connection, _LOCK_KEY)
        try:
            return await _apply(connection, migrations)
        finally:
            await leases.advisory_unlock(connection, _LOCK_KEY)
    finally:
        await connection.close()


async def _apply(connection: DbConnection, migrations: list[Migration]) -> list[str]:
    await connection.execute(_ROLES_SQL)
    await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA} AUTHORIZATION {OWNER_ROLE}")
    await connection.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}")
    await connection.execute(f"SET ROLE {OWNER_ROLE}")
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    # serve without the owner's URL checks the schema is current as the application login.
    await connection.execute(f"GRANT SELECT ON schema_migrations TO {APP_ROLE}")
    applied = {
        row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")
    }
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        try:
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} failed: {exc}"
            ) from exc
        done.append(f"{migration.version:04d}_{migration.name}")
    await connection.execute("RESET ROLE")
    return done
