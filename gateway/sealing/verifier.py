"""Verification of uploaded PDFs, kept from starving sealing.

``POST /v1/verify`` takes any PDF from any authenticated caller, so it gets resources of its
own: a worker pool apart from sealing's (a queue of verifications never delays a seal, and a
hostile upload that kills a verify worker never touches a seal in flight), a size limit of
its own, a cap on the verifications one process runs or queues at once (each holds its
upload in memory), and a per-official rate counted in PostgreSQL so every replica shares it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from gateway.http import ratelimit
from gateway.pki.crls import CrlCache
from gateway.runtime import Runtime
from gateway.sealing.sealer import registered_seals, seal_issuer
from gateway.sealing.workers import Workers
from keys import pki
from keys.codes import Code, CodedError
from keys.platform import PlatformPki
from seals.verify import VerificationReport

RETRY_BUSY_SECONDS = 1


class VerifyBusy(CodedError):
    """Every verification slot of this process is taken; the client should come back."""

    code = Code.VERIFY_BUSY

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_BUSY_SECONDS)})


class Verifier:
    """Admission (rate, then a slot) and the verify pool; sealing never shares either."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        platform: PlatformPki,
        crls: CrlCache,
        *,
        workers: Workers,
        slots: int,
        max_bytes: int,
        rate_per_official: int,
    ) -> None:
        self._db = pool
        self._crls = crls
        self._workers = workers
        self._slots = slots
        self._in_use = 0
        # Slots are taken before the body is read, and a body trickling just above the
        # slow-body guard's floor keeps one for hours: no official may hold them all.
        self._share = max(1, self._slots // 2)
        self._held: dict[str, int] = {}
        self._max_bytes = max_bytes
        self._rate = rate_per_official
        self._root_der = platform.root_cert.public_bytes(serialization.Encoding.DER)
        self._seal_issuer = seal_issuer(platform)

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    async def admit(self, official: str, now: datetime) -> None:
        """Count the call against the official's rate (429), before any byte is read."""
        async with self._db.acquire() as connection:
            await ratelimit.check_verify(connection, official, now=now, per_minute=self._rate)

    @contextlib.contextmanager
    def slot(self, official: str) -> Iterator[None]:
        """One of ``SEALHUB_VERIFY_CONCURRENCY`` places, taken at once or refused (503);
        one official holds at most half of them (at least one)."""
        if self._held.get(official, 0) >= self._share:
            raise VerifyBusy(
                f"you already have {self._share} verifications running or queued; retry shortly"
            )
        if self._in_use >= self._slots:
            raise VerifyBusy(
                f"{self._slots} verifications are already running or queued; retry shortly"
            )
        self._in_use += 1
        self._held[official] = self._held.get(official, 0) + 1
        try:
            yield
        finally:
            self._in_use -= 1
            if (left := self._held[official] - 1) > 0:
                self._held[official] = left
            else:
                del self._held[official]

    async def verify(self, data: bytes | Path) -> VerificationReport:
        crls = (
            await self._crls.get(pki.ROOT_CA_NAME),
            # Compared with the database on every verification: a revocation approved on any
            # gateway process counts here at once.
            await self._crls.get(pki.SEAL_CA_NAME, max_age_seconds=0),
        )
        return await self._workers.pool.averify(
            data,
            trust_roots=(self._root_der,),
            crls=crls,
            known_seals=await self._known_seals(),
            max_bytes=self.max_bytes,
            seal_issuer=self._seal_issuer,
        )

    async def _known_seals(self) -> dict[str, str]:
        """Certificate SHA-256 → seal id, so the report names our seals."""
        async with self._db.acquire() as connection:
            return await registered_seals(connection)


VERIFIER: web.AppKey[Verifier] = web.AppKey("verifier", Verifier)


def install_verifier(app: web.Application, runtime: Runtime, crls: CrlCache) -> Verifier:
    """The verifier under :data:`VERIFIER` from the start; its workers for the app's lifetime."""
    settings = runtime.settings
    workers = Workers(settings.verify_workers)
    verifier = Verifier(
        runtime.pool,
        runtime.pki,
        crls,
        workers=workers,
        slots=settings.verify_concurrency,
        max_bytes=settings.max_verify_bytes,
        rate_per_official=settings.verify_rate_per_official,
    )
    app[VERIFIER] = verifier
    app.cleanup_ctx.append(workers.lifetime)
    return verifier
