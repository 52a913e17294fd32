"""The replay store (``used_once``): nonces, assertion and DPoP ``jti``s, enrollment proofs,
each accepted once until it could no longer be valid anyway."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from storage.db import DbConnection
from storage.identity.errors import (
    Replayed,
    ReplayedAssertion,
    ReplayedDpop,
    ReplayedEnrollmentProof,
    ReplayedNonce,
)

ReplayKind = Literal["nonce", "assertion", "dpop", "enroll"]

_REPLAY_ERRORS: dict[str, type[Replayed]] = {
    "nonce": ReplayedNonce,
    "assertion": ReplayedAssertion,
    "dpop": ReplayedDpop,
    "enroll": ReplayedEnrollmentProof,
}


async def use_once(
    connection: DbConnection, kind: ReplayKind, scope: str, value: str, expires_at: datetime
) -> bool:
    """Record a single-use value; False when it was already used."""
    spent = await connection.fetchval(
        "INSERT INTO used_once (kind, scope, value, expires_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        kind,
        scope,
        value,
        expires_at,
    )
    return spent is not None


async def spend_all(
    connection: DbConnection, values: Sequence[tuple[ReplayKind, str, str, datetime]]
) -> None:
    """Spend several single-use values (in the caller's transaction); the first one already
    used raises its kind's Replayed error."""
    for kind, scope, value, expires_at in values:
        if not await use_once(connection, kind, scope, value, expires_at):
            raise _REPLAY_ERRORS[kind](f"this {kind} was already used")


async def purge_expired(connection: DbConnection, *, now: datetime) -> None:
    """Forget single-use values that can no longer be replayed (a bounded batch per call)."""
    await connection.execute(
        "DELETE FROM used_once WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM used_once WHERE expires_at < $1 LIMIT 5000))",
        now,
    )
