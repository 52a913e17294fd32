"""The platform PKI's shared counter: RFC 3161 serial numbers.

A time-stamp serial must be unique for the TSA, and every gateway process signs with the
same TSA key, so serials come from one PostgreSQL sequence (migration 0005) and never from
a process-local counter.
"""

from __future__ import annotations

from storage.db import DbConnection


async def next_tsa_serials(connection: DbConnection, n: int = 1) -> list[int]:
    """*n* fresh serial numbers from ``tsa_serial_numbers``, in one round trip."""
    if n < 1:
        raise ValueError("ask for at least one serial number")
    values = await connection.fetchval(
        "SELECT array_agg(nextval('tsa_serial_numbers')) FROM generate_series(1, $1::int)", n
    )
    return [int(value) for value in values]
