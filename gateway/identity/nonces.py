"""The stateless nonce issuers: login challenges, server DPoP nonces, passkey challenges.

Their HMAC keys are shared by every gateway process through PostgreSQL (wrapped under the
master key), and loaded once per issuer.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from keys.challenge import ChallengeNonces
from keys.master import MasterKey
from storage.identity.gateway_secrets import gateway_secret


class NonceIssuers:
    def __init__(self, pool: asyncpg.Pool, master_key: MasterKey) -> None:
        self._pool = pool
        self._master_key = master_key
        self._loaded: dict[str, ChallengeNonces] = {}

    async def _issuer(self, now: datetime, *, key_name: str, purpose: str) -> ChallengeNonces:
        loaded = self._loaded.get(purpose)
        if loaded is not None:
            return loaded
        async with self._pool.acquire() as connection:
            key = await gateway_secret(connection, key_name, self._master_key, now=now)
        nonces = ChallengeNonces(key, purpose=purpose)
        self._loaded[purpose] = nonces
        return nonces

    async def login(self, now: datetime) -> ChallengeNonces:
        """The login challenge nonce issuer."""
        return await self._issuer(now, key_name="challenge-nonce", purpose="login")

    async def passkey(self, now: datetime) -> ChallengeNonces:
        """The passkey registration challenge issuer (WebAuthn ``challenge`` bytes)."""
        return await self._issuer(now, key_name="passkey-challenge", purpose="passkey")

    async def dpop(self, now: datetime) -> ChallengeNonces:
        """The server DPoP nonce issuer (``SEALHUB_DPOP_NONCE=required``)."""
        return await self._issuer(now, key_name="dpop-nonce", purpose="dpop")
