"""The ``gateway_secrets`` table: random secrets every gateway process shares, wrapped under
the master key (the HMAC keys of the stateless login and DPoP nonces)."""

from __future__ import annotations

import secrets
from datetime import datetime

from keys.master import MasterKey, MasterKeyError
from storage.db import DbConnection


async def gateway_secret(
    connection: DbConnection, name: str, master_key: MasterKey, *, now: datetime
) -> bytes:
    """A random 32-byte secret shared by every process using this database and master key.

    Stored wrapped under the master key; if the master key changed (the row no longer
    opens), a new secret replaces it, which only invalidates what it protected briefly.
    """
    context = f"sealhub gateway secret\x00{name}".encode()
    row = await connection.fetchrow("SELECT wrapped FROM gateway_secrets WHERE name = $1", name)
    if row is not None:
        try:
            return master_key.unwrap(bytes(row["wrapped"]), context)
        except MasterKeyError:
            pass
    secret = secrets.token_bytes(32)
    wrapped = master_key.wrap(secret, context)
    stored = await connection.fetchval(
        "INSERT INTO gateway_secrets (name, wrapped, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET wrapped = EXCLUDED.wrapped,"
        " created_at = EXCLUDED.created_at WHERE gateway_secrets.wrapped = $4"
        " RETURNING wrapped",
        name,
        wrapped,
        now,
        None if row is None else bytes(row["wrapped"]),
    )
    if stored is not None:
        return secret
    # Another process won the race: use its secret.
    winner = await connection.fetchval("SELECT wrapped FROM gateway_secrets WHERE name = $1", name)
    return master_key.unwrap(bytes(winner), context)
