"""The ``official_keys`` table: the public keys officials enrolled, and who could hold them.

A key remembers who handled the enrollment code it came from (issuer, cosigner and the
handlers the code inherited): two ids only count as two people when neither could hold the
key the other acts with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import DbConnection
from storage.identity.officials import OFFICIAL_COLUMNS, Official, official_from_row


@dataclass(frozen=True)
class OfficialKey:
    kid: str
    official_id: str
    public_jwk: dict[str, str]
    created_at: datetime
    revoked_at: datetime | None
    # Who handed out the enrollment code this key came from, and who cosigned it.
    code_issued_by: str | None = None
    code_cosigned_by: str | None = None
    added_by_other: bool = False
    # "browser" (a console key: WebCrypto, passkeys apply) or "file" (SDK, CLI).
    device_kind: str = "file"
    label: str | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class KeyOwner:
    """An enrolled key with its official: what every authenticated request is checked against."""

    key: OfficialKey
    official: Official


@dataclass(frozen=True)
class AddedKey:
    """A key someone else added to an official, as the official is told at its next login."""

    kid: str
    added_at: datetime
    code_issued_by: str | None
    code_cosigned_by: str | None


KEY_COLUMNS = (
    "k.kid, k.official_id, k.public_jwk, k.created_at AS key_created_at, k.revoked_at,"
    " k.code_issued_by, k.code_cosigned_by, k.added_by_other, k.device_kind, k.label,"
    " k.last_used_at"
)


def key_from_row(row: asyncpg.Record) -> OfficialKey:
    return OfficialKey(
        kid=row["kid"],
        official_id=row["official_id"],
        public_jwk=dict(row["public_jwk"]),
        created_at=row["key_created_at"],
        revoked_at=row["revoked_at"],
        code_issued_by=row["code_issued_by"],
        code_cosigned_by=row["code_cosigned_by"],
        added_by_other=row["added_by_other"],
        device_kind=row["device_kind"],
        label=row["label"],
        last_used_at=row["last_used_at"],
    )


def independent_people(
    first: str, first_key_handlers: frozenset[str], second: str, second_key_handlers: frozenset[str]
) -> bool:
    """Two ids count as two people only when neither could hold the other's key: neither
    handled the enrollment code of the key the other one acts with."""
    return first != second and first not in second_key_handlers and second not in first_key_handlers


async def has_active_key(connection: DbConnection, official_id: str) -> bool:
    found = await connection.fetchval(
        "SELECT 1 FROM official_keys WHERE official_id = $1 AND revoked_at IS NULL LIMIT 1",
        official_id,
    )
    return found is not None


async def count_keys(connection: DbConnection, official_id: str) -> int:
    """Every key the official ever had, revoked ones included."""
    count = await connection.fetchval(
        "SELECT count(*) FROM official_keys WHERE official_id = $1", official_id
    )
    return int(count)


async def code_handlers_of_key(connection: DbConnection, kid: str | None) -> frozenset[str]:
    """Who handled the enrollment code of key *kid*, or of the keys it was asked with (nobody
    for an unknown key)."""
    if kid is None:
        return frozenset()
    row = await connection.fetchrow(
        "SELECT code_issued_by, code_cosigned_by, code_inherited_handlers"
        " FROM official_keys WHERE kid = $1",
        kid,
    )
    if row is None:
        return frozenset()
    direct = {who for who in (row["code_issued_by"], row["code_cosigned_by"]) if who}
    return frozenset(direct | set(row["code_inherited_handlers"]))


async def insert_key(
    connection: DbConnection,
    *,
    kid: str,
    official_id: str,
    public_jwk: dict[str, str],
    now: datetime,
    code_issued_by: str | None,
    code_cosigned_by: str | None,
    added_by_other: bool,
    code_inherited_handlers: Sequence[str],
    device_kind: str = "file",
    label: str | None = None,
) -> OfficialKey | None:
    """The new key; None when this key is already enrolled (to anyone)."""
    row = await connection.fetchrow(
        "INSERT INTO official_keys AS k (kid, official_id, public_jwk, created_at,"  # noqa: S608 (constant column lists)
        " code_issued_by, code_cosigned_by, added_by_other, code_inherited_handlers,"
        " device_kind, label)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (kid) DO NOTHING"
        f" RETURNING {KEY_COLUMNS}",
        kid,
        official_id,
        public_jwk,
        now,
        code_issued_by,
        code_cosigned_by,
        added_by_other,
        list(code_inherited_handlers),
        device_kind,
        label,
    )
    return None if row is None else key_from_row(row)


async def mark_used(connection: DbConnection, kid: str, *, now: datetime) -> None:
    """The key's ``last_used_at`` (a login or a refresh, not every request)."""
    await connection.execute("UPDATE official_keys SET last_used_at = $2 WHERE kid = $1", kid, now)


async def list_keys(connection: DbConnection, official_id: str) -> list[OfficialKey]:
    rows = await connection.fetch(
        f"SELECT {KEY_COLUMNS} FROM official_keys k WHERE k.official_id = $1"  # noqa: S608 (constant column lists)
        " ORDER BY k.created_at, k.kid",
        official_id,
    )
    return [key_from_row(row) for row in rows]


async def revoke_key(
    connection: DbConnection, official_id: str, kid: str, *, now: datetime
) -> OfficialKey | None:
    """The key, revoked now unless it already was; None when the official has no such key."""
    row = await connection.fetchrow(
        "UPDATE official_keys k SET revoked_at = coalesce(revoked_at, $3)"  # noqa: S608 (constant column lists)
        f" WHERE k.official_id = $1 AND k.kid = $2 RETURNING {KEY_COLUMNS}",
        official_id,
        kid,
        now,
    )
    return None if row is None else key_from_row(row)


async def revoke_all_keys(
    connection: DbConnection, official_id: str, *, now: datetime
) -> list[str]:
    """Revoke every live key of the official; the kids revoked."""
    rows = await connection.fetch(
        "UPDATE official_keys SET revoked_at = $2 WHERE official_id = $1"
        " AND revoked_at IS NULL RETURNING kid",
        official_id,
        now,
    )
    return [row["kid"] for row in rows]


async def key_owner(connection: DbConnection, kid: str) -> KeyOwner | None:
    row = await connection.fetchrow(
        f"SELECT {KEY_COLUMNS}, {OFFICIAL_COLUMNS} FROM official_keys k"  # noqa: S608 (constant column lists)
        " JOIN officials o ON o.id = k.official_id WHERE k.kid = $1",
        kid,
    )
    return None if row is None else KeyOwner(key_from_row(row), official_from_row(row))


async def authenticate_request(
    connection: DbConnection, *, kid: str, dpop_jti: str, replay_until: datetime
) -> tuple[bool, KeyOwner | None]:
    """One round trip per authenticated request: spend the DPoP ``jti`` and read the key's
    and the official's current status. Returns (jti was fresh, owner or None)."""
    row = await connection.fetchrow(
        "WITH spent AS ("  # noqa: S608 (constant column lists)
        "  INSERT INTO used_once (kind, scope, value, expires_at) VALUES ('dpop', $1, $2, $3)"
        "  ON CONFLICT DO NOTHING RETURNING 1)"
        f" SELECT (SELECT count(*) FROM spent) AS fresh, {KEY_COLUMNS}, {OFFICIAL_COLUMNS}"
        " FROM (SELECT 1) AS one"
        " LEFT JOIN official_keys k ON k.kid = $1"
        " LEFT JOIN officials o ON o.id = k.official_id",
        kid,
        dpop_jti,
        replay_until,
    )
    assert row is not None
    fresh = row["fresh"] == 1
    if row["kid"] is None:
        return fresh, None
    return fresh, KeyOwner(key_from_row(row), official_from_row(row))


async def take_added_keys(
    connection: DbConnection, official_id: str, kid: str, *, now: datetime
) -> list[AddedKey]:
    """Keys someone else added to this official that it was not yet told about, marked as
    told now; the key *kid* itself never (its holder may be the one who added it)."""
    rows = await connection.fetch(
        "UPDATE official_keys SET owner_notified_at = $3"
        " WHERE official_id = $1 AND kid <> $2 AND added_by_other AND owner_notified_at IS NULL"
        " RETURNING kid, created_at, code_issued_by, code_cosigned_by",
        official_id,
        kid,
        now,
    )
    return [
        AddedKey(row["kid"], row["created_at"], row["code_issued_by"], row["code_cosigned_by"])
        for row in sorted(rows, key=lambda r: (r["created_at"], r["kid"]))
    ]
