"""Signed CRLs of the platform CAs, re-signed on revocation and before ``nextUpdate``.

Revocations live in PostgreSQL only. A process keeps the CRL it signed together with the
revocation rows it was built from, and compares those rows with the database before it
serves the CRL again once ``max_age`` has passed: a revocation approved on any process is in
every process's CRL within that bound, with no message between processes that could be lost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from keys import crl, pki
from keys.clock import SYSTEM_CLOCK, Clock
from keys.platform import PlatformPki
from storage import seals as seal_rows

ONLINE_CAS = (pki.SEAL_CA_NAME, pki.TLS_CA_NAME)
CRL_NAMES = (pki.ROOT_CA_NAME, *ONLINE_CAS)
# How stale the served CRL may be: at most this long after a revocation commits anywhere.
DEFAULT_MAX_AGE_SECONDS = 1.0


def crl_entries(revocations: tuple[seal_rows.Revocation, ...]) -> list[crl.RevokedCertificate]:
    return [
        crl.RevokedCertificate(
            item.serial_number,
            item.revoked_at,
            crl.REASONS.get(item.reason or "", crl.REASONS["unspecified"]),
            invalid_since=item.invalid_since,
        )
        for item in revocations
    ]


@dataclass(frozen=True)
class _Signed:
    der: bytes
    basis: tuple[seal_rows.Revocation, ...]
    checked_at: float  # time.monotonic() of the last comparison with the database


class CrlCache:
    """One signed CRL per online CA, shared by the CRL endpoint, verify and the sealer.

    *clock* dates the CRLs; the app leaves it the wall clock, which the time stamps and
    validators that read the CRLs go by too."""

    def __init__(
        self,
        platform: PlatformPki,
        pool: asyncpg.Pool,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._platform = platform
        self._pool = pool
        self._max_age = max_age_seconds
        self._clock = clock
        self._signed: dict[str, _Signed] = {}
        self._lock = asyncio.Lock()

    def invalidate(self, ca_name: str) -> None:
        """This process approved a revocation: its next reader checks the database at once."""
        self._signed.pop(ca_name, None)

    async def get(self, ca_name: str, *, max_age_seconds: float | None = None) -> bytes:
        """The CA's CRL, compared with the database if the last check is older than the bound
        (``max_age_seconds=0``: always compared, for decisions such as verification)."""
        if ca_name == pki.ROOT_CA_NAME:
            return self._platform.root_crl()
        if ca_name not in ONLINE_CAS:
            raise KeyError(ca_name)
        bound = self._max_age if max_age_seconds is None else max_age_seconds
        async with self._lock:
            now = self._clock()
            signed = self._signed.get(ca_name)
            if signed is not None and crl.needs_refresh(crl.load_crl(signed.der), now):
                signed = None
            if signed is not None and time.monotonic() - signed.checked_at < bound:
                return signed.der
            basis = await self._revocations(ca_name)
            if signed is not None and signed.basis == basis:
                self._signed[ca_name] = _Signed(signed.der, basis, time.monotonic())
                return signed.der
            previous = self._signed.get(ca_name)
            fresh = self._platform.build_crl(
                ca_name,
                crl_entries(basis),
                now=now,
                previous_number=crl.crl_number_of(crl.load_crl(previous.der)) if previous else None,
            )
            self._signed[ca_name] = _Signed(fresh, basis, time.monotonic())
            return fresh

    async def _revocations(self, ca_name: str) -> tuple[seal_rows.Revocation, ...]:
        if ca_name != pki.SEAL_CA_NAME:
            return ()
        async with self._pool.acquire() as connection:
            return await seal_rows.revocations(connection)


CRLS: web.AppKey[CrlCache] = web.AppKey("crls", CrlCache)
