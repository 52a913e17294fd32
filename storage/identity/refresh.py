"""Refresh families and their tokens: one family per login, one live token at a time.

Tokens are stored as their SHA-256 only. Revoking families notifies every gateway process
(:data:`SESSIONS_CHANNEL`), so long-polls and event streams re-check their key at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from storage.db import DbConnection

SESSIONS_CHANNEL = "sealhub_sessions"


@dataclass(frozen=True)
class PresentedToken:
    """A refresh token's row with its family's, as read (locked) when it is presented."""

    token_hash: str
    token_expires: datetime
    used_at: datetime | None
    family_id: str
    family_kid: str
    family_official: str
    family_expires: datetime
    family_revoked: datetime | None
    # The login's passkey state ("verified", "setup_required", "not_required").
    family_passkey: str = "not_required"


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def insert_family(
    connection: DbConnection,
    *,
    family_id: str,
    official_id: str,
    kid: str,
    now: datetime,
    expires_at: datetime,
    passkey: str = "not_required",
) -> None:
    await connection.execute(
        "INSERT INTO refresh_families (id, official_id, kid, created_at, expires_at, passkey)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        family_id,
        official_id,
        kid,
        now,
        expires_at,
        passkey,
    )


async def insert_token(
    connection: DbConnection, token: str, *, family_id: str, now: datetime, expires_at: datetime
) -> None:
    await connection.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        refresh_token_hash(token),
        family_id,
        now,
        expires_at,
    )


async def presented_token(connection: DbConnection, token: str) -> PresentedToken | None:
    """The token and its family, both locked until the caller's transaction ends."""
    row = await connection.fetchrow(
        "SELECT t.token_hash, t.expires_at AS token_expires, t.used_at, f.id AS family_id,"
        " f.kid AS family_kid, f.official_id AS family_official, f.expires_at AS family_expires,"
        " f.revoked_at AS family_revoked, f.passkey AS family_passkey"
        " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
        " WHERE t.token_hash = $1 FOR UPDATE OF t, f",
        refresh_token_hash(token),
    )
    if row is None:
        return None
    return PresentedToken(**dict(row.items()))


async def mark_token_used(connection: DbConnection, token_hash: str, *, now: datetime) -> None:
    await connection.execute(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, now
    )


async def revoke_family(
    connection: DbConnection, family_id: str, *, now: datetime, reason: str
) -> None:
    await connection.execute(
        "UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3 WHERE id = $1",
        family_id,
        now,
        reason,
    )


async def revoke_passkey_families(
    connection: DbConnection, official_id: str, *, now: datetime, reason: str
) -> int:
    """Revoke the official's live families that a passkey verified; how many were."""
    result = await connection.execute(
        "UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2"
        " WHERE revoked_at IS NULL AND official_id = $3 AND passkey = 'verified'",
        now,
        reason,
        official_id,
    )
    await connection.execute("SELECT pg_notify($1, $2)", SESSIONS_CHANNEL, reason)
    return int(result.split()[-1])


async def revoke_families(
    connection: DbConnection,
    *,
    now: datetime,
    reason: str,
    official_id: str | None = None,
    kid: str | None = None,
) -> int:
    """Revoke every live family of the official or of the key; how many were."""
    result = await connection.execute(
        "UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2"
        " WHERE revoked_at IS NULL AND (official_id = $3 OR kid = $4)",
        now,
        reason,
        official_id,
        kid,
    )
    # At commit, every gateway process wakes its long-polls and event streams, which then
    # re-check their key: a revoked key, disabled or moved official loses them at once.
    await connection.execute("SELECT pg_notify($1, $2)", SESSIONS_CHANNEL, reason)
    return int(result.split()[-1])
