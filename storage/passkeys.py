"""Passkeys (WebAuthn credentials of officials) and the department settings that decide who
must use one. Statements on the caller's connection; the rules are gateway/passkeys/."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import DbConnection


@dataclass(frozen=True)
class Passkey:
    id: uuid.UUID
    official_id: str
    credential_id: bytes
    public_key: bytes  # COSE_Key, as the authenticator gave it at registration
    sign_count: int
    label: str
    transports: tuple[str, ...]
    registered_with: str  # the kid of the console key whose session registered it
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class DepartmentSettings:
    department: str
    passkey_required: bool
    updated_at: datetime | None
    updated_by: str | None


_COLUMNS = (
    "id, official_id, credential_id, public_key, sign_count, label, transports,"
    " registered_with, created_at, last_used_at, revoked_at"
)


def _passkey(row: asyncpg.Record) -> Passkey:
    return Passkey(
        id=row["id"],
        official_id=row["official_id"],
        credential_id=bytes(row["credential_id"]),
        public_key=bytes(row["public_key"]),
        sign_count=int(row["sign_count"]),
        label=row["label"],
        transports=tuple(row["transports"]),
        registered_with=row["registered_with"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


async def insert_passkey(
    connection: DbConnection,
    *,
    official_id: str,
    credential_id: bytes,
    public_key: bytes,
    sign_count: int,
    label: str,
    transports: Sequence[str],
    registered_with: str,
    now: datetime,
) -> Passkey | None:
    """The new passkey; None when the credential is already registered (to anyone)."""
    row = await connection.fetchrow(
        "INSERT INTO passkeys (id, official_id, credential_id, public_key, sign_count, label,"  # noqa: S608 (constant column list)
        " transports, registered_with, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        f" ON CONFLICT (credential_id) DO NOTHING RETURNING {_COLUMNS}",
        uuid.uuid4(),
        official_id,
        credential_id,
        public_key,
        sign_count,
        label,
        list(transports),
        registered_with,
        now,
    )
    return None if row is None else _passkey(row)


async def passkeys_of(
    connection: DbConnection, official_id: str, *, active_only: bool = False
) -> list[Passkey]:
    """Oldest first."""
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM passkeys WHERE official_id = $1"  # noqa: S608 (constant column list)
        " AND (NOT $2 OR revoked_at IS NULL) ORDER BY created_at, id",
        official_id,
        active_only,
    )
    return [_passkey(row) for row in rows]


async def by_credential(connection: DbConnection, credential_id: bytes) -> Passkey | None:
    """The passkey with this credential id, locked until the caller's transaction ends (two
    assertions of one credential are checked against its sign count one after the other)."""
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM passkeys WHERE credential_id = $1 FOR UPDATE",  # noqa: S608 (constant column list)
        credential_id,
    )
    return None if row is None else _passkey(row)


async def record_use(
    connection: DbConnection, passkey_id: uuid.UUID, *, sign_count: int, now: datetime
) -> None:
    await connection.execute(
        "UPDATE passkeys SET sign_count = $2, last_used_at = $3 WHERE id = $1",
        passkey_id,
        sign_count,
        now,
    )


async def revoke_passkey(
    connection: DbConnection, official_id: str, passkey_id: uuid.UUID, *, now: datetime
) -> Passkey | None:
    """The passkey, removed now unless it already was; None when the official has none such."""
    row = await connection.fetchrow(
        "UPDATE passkeys SET revoked_at = coalesce(revoked_at, $3)"  # noqa: S608 (constant column list)
        f" WHERE official_id = $1 AND id = $2 RETURNING {_COLUMNS}",
        official_id,
        passkey_id,
        now,
    )
    return None if row is None else _passkey(row)


async def spend_challenge(
    connection: DbConnection, official_id: str, challenge: str, *, expires_at: datetime
) -> bool:
    """Redeem a registration challenge once; False when it was already used."""
    spent = await connection.fetchval(
        "INSERT INTO used_once (kind, scope, value, expires_at) VALUES ('passkey', $1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        official_id,
        challenge,
        expires_at,
    )
    return spent is not None


async def department_settings(connection: DbConnection, department: str) -> DepartmentSettings:
    """The department's settings; the defaults when none were ever changed."""
    row = await connection.fetchrow(
        "SELECT passkey_required, updated_at, updated_by FROM department_settings"
        " WHERE department = $1",
        department,
    )
    if row is None:
        return DepartmentSettings(department, True, None, None)
    return DepartmentSettings(
        department, row["passkey_required"], row["updated_at"], row["updated_by"]
    )


async def put_department_settings(
    connection: DbConnection,
    department: str,
    *,
    passkey_required: bool,
    now: datetime,
    updated_by: str,
) -> DepartmentSettings:
    await connection.execute(
        "INSERT INTO department_settings (department, passkey_required, updated_at, updated_by)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (department) DO UPDATE SET"
        " passkey_required = EXCLUDED.passkey_required, updated_at = EXCLUDED.updated_at,"
        " updated_by = EXCLUDED.updated_by",
        department,
        passkey_required,
        now,
        updated_by,
    )
    return DepartmentSettings(department, passkey_required, now, updated_by)


async def lock_department_settings(connection: DbConnection, department: str) -> None:
    """Serialise changes of one department's settings (the row may not exist yet)."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtext('department_settings'), hashtext($1))", department
    )


async def binds(connection: DbConnection, official_id: str, kid: str) -> bool:
    """Whether the official's key *kid* answers to passkeys: the official has an active
    passkey, or a removed one registered after the key was enrolled (removing it must not
    free the keys it guarded)."""
    found = await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM passkeys p JOIN official_keys k ON k.kid = $2"
        " WHERE p.official_id = $1 AND (p.revoked_at IS NULL OR p.created_at > k.created_at))",
        official_id,
        kid,
    )
    return bool(found)
