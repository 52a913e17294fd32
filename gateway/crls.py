"""Signed CRLs of the platform CAs, re-signed on revocation and before ``nextUpdate``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from keys import crl, pki
from keys.platform import PlatformPki

ONLINE_CAS = (pki.SEAL_CA_NAME, pki.TLS_CA_NAME)
CRL_NAMES = (pki.ROOT_CA_NAME, *ONLINE_CAS)


async def revoked_seals(pool: asyncpg.Pool) -> list[crl.RevokedCertificate]:
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT serial_number, revoked_at, revocation_reason FROM seals"
            " WHERE status = 'revoked' ORDER BY revoked_at"
        )
    return [
        crl.RevokedCertificate(
            int(row["serial_number"]),
            row["revoked_at"],
            crl.REASONS.get(row["revocation_reason"] or "", crl.REASONS["unspecified"]),
        )
        for row in rows
    ]


class CrlCache:
    """One signed CRL per online CA, shared by the CRL endpoint and the sealer (B-LT)."""

    def __init__(self, platform: PlatformPki, pool: asyncpg.Pool) -> None:
        self._platform = platform
        self._pool = pool
        self._der: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    def invalidate(self, ca_name: str) -> None:
        """A revocation happened: the next reader gets a freshly signed CRL."""
        self._der.pop(ca_name, None)

    async def get(self, ca_name: str) -> bytes:
        if ca_name == pki.ROOT_CA_NAME:
            return self._platform.root_crl()
        if ca_name not in ONLINE_CAS:
            raise KeyError(ca_name)
        now = datetime.now(UTC)
        async with self._lock:
            cached = self._der.get(ca_name)
            if cached is not None and not crl.needs_refresh(crl.load_crl(cached), now):
                return cached
            revoked = await revoked_seals(self._pool) if ca_name == pki.SEAL_CA_NAME else []
            previous = crl.crl_number_of(crl.load_crl(cached)) if cached else None
            fresh = self._platform.build_crl(ca_name, revoked, now=now, previous_number=previous)
            self._der[ca_name] = fresh
            return fresh


CRLS: web.AppKey[CrlCache] = web.AppKey("crls", CrlCache)
