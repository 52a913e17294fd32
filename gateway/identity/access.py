"""Refusals as audit events, the one implementation behind the authorization helpers of
gateway/identity/auth.py and the identity service.

Each refusal is written in its own transaction (it changes nothing else). The noisy ones
(404s that hide a resource, failed logins) are aggregated per minute: the first of a minute
writes the event, the others bump its counter, so probing is visible and the log bounded;
counting them never turns the refusal into a 500.
"""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from gateway.identity.errors import NotFound
from gateway.identity.principal import Caller
from keys.clock import Clock as Clock
from storage import audit_events as events
from storage import supervision as supervision_rows
from storage.audit_outbox import AuditSink
from storage.identity import counters
from storage.identity.counters import FailureKind

log = logging.getLogger("sealhub.auth")


def reason_of(exc: BaseException) -> str:
    """The failed check a refusal names: a JWS error's ``reason``, else its code."""
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else str(getattr(type(exc), "code", "error"))


def _minute(now: datetime) -> tuple[datetime, str]:
    minute = now.replace(second=0, microsecond=0)
    return minute, minute.isoformat().replace("+00:00", "Z")


class AccessLog:
    """``access.denied`` and ``login.failed`` events."""

    def __init__(self, pool: asyncpg.Pool, *, audit: AuditSink, clock: Clock) -> None:
        self._pool = pool
        self._audit = audit
        self._clock = clock

    async def deny(self, caller: Caller, reason: str, **details: str) -> None:
        """One ``access.denied`` event for a refused role or resource."""
        principal = caller.principal
        async with self._pool.acquire() as connection, connection.transaction():
            await self._audit.record(
                connection,
                events.access_denied(
                    self._clock(),
                    official=principal.official_id if principal else None,
                    jkt=principal.kid if principal else None,
                    department=principal.department if principal else None,
                    reason=reason,
                    method=caller.method,
                    path=caller.path,
                    source=caller.source,
                    extra=details,
                ),
            )

    async def hide(self, caller: Caller, reason: str, **details: str) -> NotFound:
        """The 404 that hides a resource from a signed-in caller (another department's, or
        none at all: ID probing), counted as ``access.denied``, aggregated per official,
        source and minute. Returned for the caller to raise."""
        principal = caller.principal
        if principal is None:
            return NotFound()
        now = self._clock()
        minute, minute_text = _minute(now)
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                first = await supervision_rows.count_denied_access(
                    connection,
                    minute=minute,
                    official=principal.official_id,
                    department=principal.department,
                    source=caller.source,
                    reason=reason,
                )
                if first:
                    await self._audit.record(
                        connection,
                        events.access_denied(
                            now,
                            official=principal.official_id,
                            jkt=principal.kid,
                            department=principal.department,
                            reason=reason,
                            method=caller.method,
                            path=caller.path,
                            source=caller.source,
                            extra={"minute": minute_text, "aggregated": True, **details},
                        ),
                    )
        except Exception:
            log.exception("could not record a denied access")
        return NotFound()

    async def failure(
        self, source: str, kind: FailureKind, reason: str, *, subject: str = ""
    ) -> None:
        """Count a failed attempt; only the first per (minute, source, kind, subject)
        becomes an audit event, so a flood of garbage costs one counter row."""
        now = self._clock()
        minute, minute_text = _minute(now)
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                first = await counters.count_failure(
                    connection,
                    minute=minute,
                    source=source,
                    kind=kind,
                    subject=subject,
                    reason=reason,
                )
                if first:
                    await self._audit.record(
                        connection,
                        events.failures_aggregated(
                            now,
                            kind=kind,
                            subject=subject or None,
                            reason=reason,
                            source=source,
                            minute=minute_text,
                        ),
                    )
        except Exception:  # counting must never turn a 401 into a 500
            log.exception("could not record an authentication failure")
