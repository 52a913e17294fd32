"""Revocation state of the department seals, read where every gateway process sees it.

The database is the only place a revocation lives: each process derives its CRL and its
verification input from these rows, so no process can go on trusting what another revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from storage.db import DbConnection


@dataclass(frozen=True)
class Revocation:
    """One revoked seal certificate as a CRL entry needs it."""

    serial_number: int
    revoked_at: datetime
    reason: str | None
    invalid_since: datetime | None


async def revocations(connection: DbConnection) -> tuple[Revocation, ...]:
    """Every revoked seal, in a stable order (equal tuples mean an equal CRL)."""
    rows = await connection.fetch(
        "SELECT serial_number, revoked_at, revocation_reason, invalid_since FROM seals"
        " WHERE status = 'revoked' ORDER BY serial_number"
    )
    return tuple(
        Revocation(
            int(row["serial_number"]),
            row["revoked_at"],
            row["revocation_reason"],
            row["invalid_since"],
        )
        for row in rows
    )


async def still_active_for_dispatch(connection: DbConnection, seal_id: uuid.UUID) -> bool:
    """In the dispatch transaction: is the seal still active, and will it stay so until commit?

    ``FOR SHARE`` sees a revocation committed meanwhile (READ COMMITTED re-reads the newest
    row version) and makes a revocation that comes later wait for this commit, so a document
    is either dispatched before the revocation took effect or not at all.
    """
    status: str | None = await connection.fetchval(
        "SELECT status FROM seals WHERE id = $1 FOR SHARE", seal_id
    )
    return status == "active"
