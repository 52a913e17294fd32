"""The platform TSA for officials (``POST /v1/pki/tsa``): counted per official, serials
from the sequence every gateway process shares."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from gateway.http import ratelimit
from keys.tsa import Timestamper
from storage.pki import next_tsa_serials


class TimeStampService:
    def __init__(self, pool: asyncpg.Pool, timestamper: Timestamper) -> None:
        self._pool = pool
        self._timestamper = timestamper

    async def stamp(self, official_id: str, query_der: bytes, now: datetime) -> bytes:
        """A DER TimeStampResp for the DER TimeStampReq *query_der* (a rejection, never an
        error, for a request the authority cannot honour); 429 past the official's rate."""
        async with self._pool.acquire() as connection:
            await ratelimit.check(connection, "tsa", "subject", official_id, now=now)
            (serial,) = await next_tsa_serials(connection, 1)
        return self._timestamper.respond(query_der, serial_number=serial, now=now)
