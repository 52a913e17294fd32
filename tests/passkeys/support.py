"""The passkey service as create_app builds it, for in-process tests of the services that
depend on it (real PostgreSQL, no stand-in)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from gateway.http.ratelimit import LIMITS
from gateway.identity.access import AccessLog
from gateway.identity.nonces import NonceIssuers
from gateway.identity.service import OfficialsService
from gateway.passkeys.service import PasskeyService, RelyingParty
from keys.master import MasterKey
from storage.audit_outbox import OutboxSink


def _now() -> datetime:
    return datetime.now(UTC)


def passkey_service(
    pool: asyncpg.Pool,
    master_key: MasterKey,
    origin: str,
    *,
    clock: Callable[[], datetime] = _now,
    nonces: NonceIssuers | None = None,
) -> PasskeyService:
    audit = OutboxSink()
    access = AccessLog(pool, audit=audit, clock=clock)
    return PasskeyService(
        pool,
        audit=audit,
        clock=clock,
        access=access,
        nonces=nonces or NonceIssuers(pool, master_key),
        officials=OfficialsService(pool, audit=audit, clock=clock, access=access, limits=LIMITS),
        relying_party=RelyingParty.of(origin),
    )
